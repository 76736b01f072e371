import Foundation

/// A value on the stack of the minimal pickle machine: the subset `torch.save` emits for state dicts.
public indirect enum PickleValue: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    /// A `GLOBAL` reference (`module`, `name`), e.g. `collections OrderedDict`.
    case global(module: String, name: String)
    /// A persistent id record: `('storage', torch.XStorage, key, location, numel)`.
    case storage(TorchStorageRecord)
    /// A rebuilt tensor (`torch._utils._rebuild_tensor_v2` / `_rebuild_parameter`).
    case tensor(TorchTensorRecord)

    var typeName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .list: "list"
        case .dict: "dict"
        case let .global(m, n): "\(m).\(n)"
        case .storage: "storage"
        case .tensor: "tensor"
        }
    }
}

/// A mutable pickled list (shared through the memo, as in Python).
public final class PickleList: @unchecked Sendable {
    // @unchecked: mutated only while the single-threaded pickle machine runs, read-only afterwards.
    public var items: [PickleValue] = []
}

/// A mutable pickled dict with string or int keys, insertion order kept.
public final class PickleDict: @unchecked Sendable {
    // @unchecked: as `PickleList`.
    public var items: [(key: PickleValue, value: PickleValue)] = []
}

/// Where a tensor's bytes live: `data/<key>` in the archive, of `dtype`, `count` elements.
public struct TorchStorageRecord: Sendable, Equatable {
    public enum DType: String, Sendable {
        case float32 = "FloatStorage", float16 = "HalfStorage", bfloat16 = "BFloat16Storage"
        case float64 = "DoubleStorage", int64 = "LongStorage", int32 = "IntStorage"

        public var byteSize: Int {
            switch self {
            case .float16, .bfloat16: 2
            case .float32, .int32: 4
            case .float64, .int64: 8
            }
        }
    }
    public var key: String
    public var dtype: DType
    public var count: Int
}

/// A tensor view into a storage: element offset, sizes and strides (in elements).
public struct TorchTensorRecord: Sendable, Equatable {
    public var storage: TorchStorageRecord
    public var offset: Int
    public var shape: [Int]
    public var stride: [Int]

    /// Whether the view is row-major contiguous (size-1 dimensions' strides do not matter).
    var isContiguous: Bool {
        var expected = 1
        for (size, stride) in zip(shape, stride).reversed() where size > 1 {
            if stride != expected { return false }
            expected *= size
        }
        return true
    }

    /// Calls `body(k, e)` for each element in row-major order: `k` its index in the output, `e` its offset in
    /// the storage (an odometer over the shape).
    func forEachElementOffset(_ body: (_ k: Int, _ e: Int) -> Void) {
        let n = shape.reduce(1, *)
        var index = [Int](repeating: 0, count: shape.count)
        for k in 0..<n {
            var e = offset
            for d in 0..<index.count { e += index[d] * stride[d] }
            body(k, e)
            var d = index.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
    }
}

/// Runs the pickle opcodes `torch.save` emits (protocol 2, plus the protocol 4 framing ops) and
/// returns the unpickled root. Only the globals a state dict needs are allowed:
/// `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter`
/// and the `torch.*Storage` types — anything else is an error, never code execution.
public func unpickleTorch(_ bytes: [UInt8]) throws -> PickleValue {
    var stack: [PickleValue] = []
    var marks: [Int] = []
    var memo: [Int: PickleValue] = [:]
    var i = 0
    func need(_ n: Int) throws {
        guard i + n <= bytes.count else { throw TensorError("truncated at byte \(i) (needs \(n) more)") }
    }
    func u32() throws -> Int {
        try need(4)
        defer { i += 4 }
        return Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24
    }
    func line() throws -> String {
        guard let end = bytes[i...].firstIndex(of: 0x0A) else { throw TensorError("unterminated GLOBAL at byte \(i)") }
        defer { i = end + 1 }
        return String(decoding: bytes[i..<end], as: UTF8.self)
    }
    func text(_ n: Int) throws -> String {
        try need(n)
        defer { i += n }
        return String(decoding: bytes[i..<(i + n)], as: UTF8.self)
    }
    func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw TensorError("stack underflow at byte \(i)") }
        return v
    }
    func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast(), m <= stack.count else { throw TensorError("no MARK before byte \(i)") }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }
    func setItems(_ target: PickleValue, _ kv: [PickleValue]) throws {
        guard case let .dict(d) = target else { throw TensorError("SETITEM(S) on a \(target.typeName) at byte \(i)") }
        guard kv.count % 2 == 0 else { throw TensorError("SETITEMS with an odd number of values at byte \(i)") }
        for k in stride(from: 0, to: kv.count, by: 2) { d.items.append((kv[k], kv[k + 1])) }
    }
    while true {
        try need(1)
        let op = bytes[i]
        i += 1
        switch op {
        case 0x80: try need(1); i += 1                       // PROTO
        case 0x95: try need(8); i += 8                       // FRAME
        case 0x2E: return try pop()                          // STOP
        case 0x28: marks.append(stack.count)                 // MARK
        case 0x7D: stack.append(.dict(PickleDict()))         // EMPTY_DICT
        case 0x5D: stack.append(.list(PickleList()))         // EMPTY_LIST
        case 0x29: stack.append(.tuple([]))                  // EMPTY_TUPLE
        case 0x4E: stack.append(.none)                       // NONE
        case 0x88: stack.append(.bool(true))                 // NEWTRUE
        case 0x89: stack.append(.bool(false))                // NEWFALSE
        case 0x4B: try need(1); stack.append(.int(Int(bytes[i]))); i += 1               // BININT1
        case 0x4D: try need(2); stack.append(.int(Int(bytes[i]) | Int(bytes[i + 1]) << 8)); i += 2  // BININT2
        case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try u32()))))       // BININT
        case 0x8A:                                                                       // LONG1
            try need(1)
            let n = Int(bytes[i]); i += 1
            try need(n)
            guard n <= 8 else { throw TensorError("LONG1 of \(n) bytes is too large at byte \(i)") }
            var v: Int64 = 0
            for k in 0..<n { v |= Int64(bytes[i + k]) << (8 * Int64(k)) }
            if n > 0 && n < 8 && bytes[i + n - 1] & 0x80 != 0 { v -= Int64(1) << (8 * Int64(n)) }
            i += n
            stack.append(.int(Int(v)))
        case 0x47:                                                                       // BINFLOAT (big-endian)
            try need(8)
            var bits: UInt64 = 0
            for k in 0..<8 { bits = bits << 8 | UInt64(bytes[i + k]) }
            i += 8
            stack.append(.float(Double(bitPattern: bits)))
        case 0x58: stack.append(.string(try text(try u32())))                           // BINUNICODE
        case 0x8C: try need(1); let n = Int(bytes[i]); i += 1; stack.append(.string(try text(n)))  // SHORT_BINUNICODE
        case 0x42: let n = try u32(); try need(n); stack.append(.bytes(Array(bytes[i..<(i + n)]))); i += n  // BINBYTES
        case 0x43: try need(1); let n = Int(bytes[i]); i += 1; try need(n)                // SHORT_BINBYTES
            stack.append(.bytes(Array(bytes[i..<(i + n)]))); i += n
        case 0x63:                                                                       // GLOBAL
            let module = try line(), name = try line()
            try checkAllowed(module, name)
            stack.append(.global(module: module, name: name))
        case 0x93:                                                                       // STACK_GLOBAL
            let name = try pop(), module = try pop()
            guard case let .string(m) = module, case let .string(n) = name else { throw TensorError("STACK_GLOBAL needs two strings at byte \(i)") }
            try checkAllowed(m, n)
            stack.append(.global(module: m, name: n))
        case 0x71: try need(1); memo[Int(bytes[i])] = stack.last; i += 1               // BINPUT
        case 0x72: memo[try u32()] = stack.last                                          // LONG_BINPUT
        case 0x94: memo[memo.count] = stack.last                                         // MEMOIZE
        case 0x68, 0x6A:                                                                 // BINGET, LONG_BINGET
            let key: Int
            if op == 0x68 { try need(1); key = Int(bytes[i]); i += 1 } else { key = try u32() }
            guard let v = memo[key] else { throw TensorError("memo key \(key) not set at byte \(i)") }
            stack.append(v)
        case 0x74: stack.append(.tuple(try popMark()))                                   // TUPLE
        case 0x85: stack.append(.tuple([try pop()]))                                     // TUPLE1
        case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))        // TUPLE2
        case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))  // TUPLE3
        case 0x61:                                                                       // APPEND
            let v = try pop()
            guard case let .list(l)? = stack.last else { throw TensorError("APPEND to a non-list at byte \(i)") }
            l.items.append(v)
        case 0x65:                                                                       // APPENDS
            let vs = try popMark()
            guard case let .list(l)? = stack.last else { throw TensorError("APPENDS to a non-list at byte \(i)") }
            l.items += vs
        case 0x73, 0x75:                                                                 // SETITEM, SETITEMS
            let kv: [PickleValue]
            if op == 0x73 { let v = try pop(), k = try pop(); kv = [k, v] } else { kv = try popMark() }
            // The dict stays on the stack; it is a reference, so the memo sees the items too.
            guard let d = stack.last else { throw TensorError("SETITEM(S) on an empty stack at byte \(i)") }
            try setItems(d, kv)
        case 0x51:                                                                       // BINPERSID
            stack.append(try persistentLoad(try pop()))
        case 0x52:                                                                       // REDUCE
            let args = try pop(), callable = try pop()
            stack.append(try reduce(callable, args))
        case 0x62: _ = try pop()                                                         // BUILD: state ignored (OrderedDict _metadata)
        default:
            throw TensorError(String(format: "unsupported pickle opcode 0x%02X at byte %d", op, i - 1))
        }
    }
}

/// Globals a weights file may reference; anything else (e.g. `os.system`) is refused on sight.
private func checkAllowed(_ module: String, _ name: String) throws {
    let allowed = (module == "collections" && name == "OrderedDict")
        || (module == "torch._utils" && name.hasPrefix("_rebuild_"))
        || (module == "torch" && TorchStorageRecord.DType(rawValue: name) != nil)
    guard allowed else { throw TensorError("global \(module).\(name) is not allowed in a weights file") }
}

private func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
    guard case let .tuple(t) = pid, t.count >= 5, case .string("storage") = t[0],
          case let .global(module, name) = t[1], case let .string(key) = t[2], case let .int(count) = t[4] else {
        throw TensorError("persistent id is not ('storage', torch.XStorage, key, location, numel)")
    }
    guard module == "torch", let dtype = TorchStorageRecord.DType(rawValue: name) else {
        throw TensorError("unsupported storage type \(module).\(name) (supported: Float, Half, BFloat16, Double, Long, Int)")
    }
    return .storage(TorchStorageRecord(key: key, dtype: dtype, count: count))
}

private func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
    guard case let .global(module, name) = callable, case let .tuple(a) = args else {
        throw TensorError("REDUCE of \(callable.typeName) with \(args.typeName) arguments")
    }
    func ints(_ v: PickleValue) throws -> [Int] {
        guard case let .tuple(items) = v else { throw TensorError("\(name): expected a tuple of ints, got \(v.typeName)") }
        return try items.map { item in
            guard case let .int(n) = item else { throw TensorError("\(name): expected an int, got \(item.typeName)") }
            return n
        }
    }
    switch (module, name) {
    case ("collections", "OrderedDict"):
        return .dict(PickleDict())
    case ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"):
        guard a.count >= 4, case let .storage(s) = a[0], case let .int(offset) = a[1] else {
            throw TensorError("_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, …)")
        }
        let shape = try ints(a[2]), stride = try ints(a[3])
        guard shape.count == stride.count else { throw TensorError("tensor size \(shape) and stride \(stride) differ in rank") }
        return .tensor(TorchTensorRecord(storage: s, offset: offset, shape: shape, stride: stride))
    case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
        guard let first = a.first, case .tensor = first else { throw TensorError("_rebuild_parameter without a tensor") }
        return first
    default:
        throw TensorError("global \(module).\(name) is not allowed in a weights file")
    }
}
