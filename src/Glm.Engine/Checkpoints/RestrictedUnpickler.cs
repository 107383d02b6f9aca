using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace Glm.Engine.Checkpoints;

/// <summary>
/// A pickle interpreter that only understands what <c>torch.save</c> writes for a state dict: containers, numbers,
/// strings, persistent storage ids, and four kinds of globals (<c>collections.OrderedDict</c>,
/// <c>torch._utils._rebuild_tensor_v2</c>, <c>torch._utils._rebuild_parameter</c>, <c>torch.*Storage</c>). Every other
/// global or opcode is rejected before anything is called, so a malicious pickle cannot run code.
/// </summary>
internal sealed class RestrictedUnpickler
{
    private static readonly object Mark = new();
    private readonly string _source;
    private readonly byte[] _data;
    private int _pos;
    private readonly List<object?> _stack = new();
    private readonly List<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = new();

    private RestrictedUnpickler(string source, byte[] data) { _source = source; _data = data; }

    /// <summary>Interprets the pickle and returns its top-level object. <paramref name="source"/> names it in errors.</summary>
    public static object? Load(string source, byte[] data) => new RestrictedUnpickler(source, data).Run();

    private GlmException Error(string what) => new($"{_source}: {what}");

    private object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Error("pickle ends without a STOP opcode (file truncated?).");
            int at = _pos;
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: _pos++; break; // PROTO n
                case 0x95: Take(8); break; // FRAME length (framing is only a read-ahead hint)
                case (byte)'.': return _stack.Count == 1 ? _stack[0] : throw Error($"pickle STOP with {_stack.Count} objects on the stack, expected 1.");
                case (byte)'(': _marks.Add(_stack.Count); break;
                case (byte)')': Push(Array.Empty<object?>()); break;
                case (byte)'t': Push(PopToMark().ToArray()); break;
                case 0x85: Push(new[] { Pop() }); break;
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                case (byte)'}': Push(new PickleDict()); break;
                case (byte)'d': { var d = new PickleDict(); SetItems(d, PopToMark()); Push(d); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); SetItems(PeekAs<PickleDict>("SETITEM"), new List<object?> { k, v }); break; }
                case (byte)'u': { var items = PopToMark(); SetItems(PeekAs<PickleDict>("SETITEMS"), items); break; }
                case (byte)']': Push(new List<object?>()); break;
                case (byte)'l': Push(PopToMark()); break;
                case (byte)'a': { var v = Pop(); PeekAs<List<object?>>("APPEND").Add(v); break; }
                case (byte)'e': { var items = PopToMark(); PeekAs<List<object?>>("APPENDS").AddRange(items); break; }
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case (byte)'K': Push((long)Take(1)[0]); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                case 0x8a: Push(ReadLong(Take(1)[0])); break;
                case 0x8b: Push(ReadLong(CheckedLength(BinaryPrimitives.ReadInt32LittleEndian(Take(4))))); break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                case (byte)'X': Push(Encoding.UTF8.GetString(Take(CheckedLength(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))))); break;
                case 0x8c: Push(Encoding.UTF8.GetString(Take(Take(1)[0]))); break;
                case 0x8d: Push(Encoding.UTF8.GetString(Take(CheckedLength(BinaryPrimitives.ReadInt64LittleEndian(Take(8)))))); break;
                case (byte)'T': Push(Encoding.Latin1.GetString(Take(CheckedLength(BinaryPrimitives.ReadInt32LittleEndian(Take(4)))))); break;
                case (byte)'U': Push(Encoding.Latin1.GetString(Take(Take(1)[0]))); break;
                case (byte)'B': Push(Take(CheckedLength(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))).ToArray()); break;
                case (byte)'C': Push(Take(Take(1)[0]).ToArray()); break;
                case (byte)'q': _memo[Take(1)[0]] = Peek("BINPUT"); break;
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Take(4))] = Peek("LONG_BINPUT"); break;
                case 0x94: _memo[_memo.Count] = Peek("MEMOIZE"); break;
                case (byte)'h': Push(MemoGet(Take(1)[0])); break;
                case (byte)'j': Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(Take(4)))); break;
                case (byte)'c': { string module = ReadLine(); string name = ReadLine(); Push(ResolveGlobal(module, name)); break; }
                case 0x93: { var name = Pop(); var module = Pop(); Push(ResolveGlobal(module as string ?? "?", name as string ?? "?")); break; }
                case (byte)'Q': Push(PersistentLoad(Pop())); break;
                case (byte)'R': { var args = Pop(); var func = Pop(); Push(Reduce(func, args)); break; }
                case (byte)'b': Build(); break;
                case (byte)'0': Pop(); break;
                case (byte)'1': PopToMark(); break;
                case (byte)'2': Push(Peek("DUP")); break;
                default:
                    throw Error($"pickle opcode 0x{op:x2} ('{(op >= 32 && op < 127 ? (char)op : '?')}') at byte {at} is not allowed in a checkpoint (only state-dict opcodes are accepted).");
            }
        }
    }

    private ReadOnlySpan<byte> Take(int count)
    {
        if (count < 0 || _pos + count > _data.Length) throw Error($"pickle truncated: needs {count} bytes at byte {_pos}, {_data.Length - _pos} left.");
        var span = new ReadOnlySpan<byte>(_data, _pos, count);
        _pos += count;
        return span;
    }

    private int CheckedLength(long length) =>
        length >= 0 && length <= _data.Length - _pos ? (int)length : throw Error($"pickle length {length} at byte {_pos} runs beyond the pickle ({_data.Length - _pos} bytes left).");

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Error($"pickle GLOBAL at byte {_pos} has no line end.");
        string s = Encoding.UTF8.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private object ReadLong(int length)
    {
        var value = new BigInteger(Take(length), isUnsigned: false, isBigEndian: false);
        if (value < long.MinValue || value > long.MaxValue) throw Error($"pickle integer {value} does not fit in 64 bits.");
        return (long)value;
    }

    private void Push(object? o) => _stack.Add(o);

    private object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _marks[^1] == _stack.Count)) throw Error($"pickle stack underflow at byte {_pos - 1}.");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return o;
    }

    private object? Peek(string op) => _stack.Count > 0 ? _stack[^1] : throw Error($"pickle {op} on an empty stack at byte {_pos - 1}.");

    private T PeekAs<T>(string op) where T : class =>
        Peek(op) as T ?? throw Error($"pickle {op} applied to {Describe(_stack[^1])}, expected a {typeof(T).Name}.");

    private List<object?> PopToMark()
    {
        if (_marks.Count == 0) throw Error($"pickle needs a MARK before byte {_pos - 1}.");
        int start = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(start, _stack.Count - start);
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    private object? MemoGet(long key) => _memo.TryGetValue(key, out var v) ? v : throw Error($"pickle memo key {key} was never stored.");

    private void SetItems(PickleDict dict, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Error("pickle SETITEMS with an odd number of items.");
        for (int i = 0; i < items.Count; i += 2)
        {
            object key = items[i] ?? throw Error("pickle dict key is None; expected a string or number.");
            if (key is not (string or long or bool or double)) throw Error($"pickle dict key {Describe(key)} is not a string or number.");
            dict.Set(key, items[i + 1]);
        }
    }

    private static readonly string[] AllowedCallables =
        { "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter" };

    private PickleGlobal ResolveGlobal(string module, string name)
    {
        var g = new PickleGlobal(module, name);
        if (AllowedCallables.Contains(g.FullName)) return g;
        if (module == "torch" && DTypes.FromStorageClass(name) is not null) return g;
        throw Error($"pickle global '{g.FullName}' is not allowed in a checkpoint (allowed: {string.Join(", ", AllowedCallables)}, torch.<Type>Storage).");
    }

    private object PersistentLoad(object? pid)
    {
        if (pid is object?[] { Length: 5 } t && t[0] is "storage" && t[1] is PickleGlobal g && t[2] is string key
            && t[3] is string location && t[4] is long numel && numel >= 0)
        {
            var dtype = DTypes.FromStorageClass(g.Name) ?? throw Error($"pickle storage type '{g.FullName}' is not supported.");
            return new StorageRef(dtype, key, location, numel);
        }
        throw Error($"pickle persistent id {Describe(pid)} is not ('storage', torch.<Type>Storage, key, location, numel).");
    }

    private object? Reduce(object? func, object? args)
    {
        if (func is not PickleGlobal g || args is not object?[] a)
            throw Error($"pickle REDUCE of {Describe(func)} is not allowed (only whitelisted callables with a tuple of arguments).");
        switch (g.FullName)
        {
            case "collections.OrderedDict" when a.Length == 0:
                return new PickleDict();
            case "torch._utils._rebuild_tensor_v2" when a.Length >= 4 && a[0] is StorageRef s && a[1] is long offset:
                return new TensorRef(s, offset, LongTuple(a[2], "size"), LongTuple(a[3], "stride"));
            case "torch._utils._rebuild_parameter" when a.Length >= 1 && a[0] is TensorRef tensor:
                return tensor;
            default:
                throw Error($"pickle REDUCE of '{g.FullName}' with arguments {Describe(args)} is not allowed.");
        }
    }

    private long[] LongTuple(object? o, string what) =>
        o is object?[] t && t.All(x => x is long) ? t.Select(x => (long)x!).ToArray()
            : throw Error($"pickle tensor {what} {Describe(o)} is not a tuple of integers.");

    private void Build()
    {
        Pop(); // state: OrderedDict's _metadata or a tensor's attributes; neither affects the weights
        var target = Peek("BUILD");
        if (target is not (PickleDict or TensorRef))
            throw Error($"pickle BUILD on {Describe(target)} is not allowed.");
    }

    private static string Describe(object? o) => o switch
    {
        null => "None",
        PickleGlobal g => g.FullName,
        string s => $"'{s}'",
        object?[] t => "(" + string.Join(", ", t.Select(Describe)) + ")",
        _ => o.GetType().Name,
    };
}
