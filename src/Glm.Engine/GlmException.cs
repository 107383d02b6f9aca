namespace Glm.Engine;

/// <summary>
/// An error caused by the caller's input (a file, a field, a value) rather than by a bug. Its message names what was
/// wrong and what was expected, and is meant to be shown to the user as is.
/// </summary>
public class GlmException : Exception
{
    /// <summary>Creates the exception with a user-facing message.</summary>
    public GlmException(string message) : base(message) { }

    /// <summary>Creates the exception with a user-facing message and the underlying cause.</summary>
    public GlmException(string message, Exception inner) : base(message, inner) { }
}
