// Entry point of the `glm` command. Verbs are wired in AgentHost.Cli.
return await AgentHost.Cli.GlmCommandLine.RunAsync(args);
