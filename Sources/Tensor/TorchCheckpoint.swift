import Foundation

/// A checkpoint written by `torch.save` (the zip format of torch ≥ 1.6), read without Python:
/// the zip's stored (uncompressed) entries are located through its central directory, the
/// `data.pkl` entry runs through a minimal pickle machine (`unpickleTorch`), and tensors are
/// read from the `data/<key>` entries of the memory-mapped file, converted to float32.
///
/// The state dict is the root dict's `state_dict` entry when there is one (GILL's
/// `{'state_dict': …}`), else the root dict itself; nested dicts are flattened with dots.
/// Device locations in the records (`'cuda:0'`) are ignored: everything loads on the CPU.
public final class TorchCheckpoint: Sendable {
    public let url: URL
    /// Tensor records by state-dict name, as stored (prefixes such as `module.` kept).
    public let records: [String: TorchTensorRecord]
    private let file: MappedFile
    /// Byte range of each `data/<key>` entry.
    private let storages: [String: Range<Int>]

    public init(url: URL) throws {
        self.url = url
        let file: MappedFile
        do { file = try MappedFile(url: url) } catch {
            throw TensorError(file: url, "cannot open: \(error)")
        }
        self.file = file
        let entries = try file.withBytes(0..<file.count) { try ZipDirectory.read($0, url: url) }
        guard let pickleName = entries.keys.filter({ $0.hasSuffix("data.pkl") }).min(by: { $0.count < $1.count }) else {
            throw TensorError(file: url, "is not a torch zip checkpoint (no data.pkl entry; legacy pre-1.6 files are not supported)")
        }
        let root = String(pickleName.dropLast("data.pkl".count))
        if let order = entries[root + "byteorder"] {
            let text = file.withBytes(order) { String(decoding: $0, as: UTF8.self) }
            guard text == "little" else { throw TensorError(file: url, "byteorder is '\(text)', only little-endian is supported") }
        }
        var storages: [String: Range<Int>] = [:]
        for (name, range) in entries where name.hasPrefix(root + "data/") {
            storages[String(name.dropFirst((root + "data/").count))] = range
        }
        self.storages = storages
        let pickled = file.withBytes(entries[pickleName]!) { Array($0) }
        let value: PickleValue
        do { value = try unpickleTorch(pickled) } catch {
            throw TensorError(file: url, "\(pickleName): \(error)")
        }
        guard case let .dict(top) = value else {
            throw TensorError(file: url, "the pickled root is a \(value.typeName), expected a dict")
        }
        var stateDict = top
        for (k, v) in top.items {
            if case .string("state_dict") = k, case let .dict(d) = v { stateDict = d }
        }
        var records: [String: TorchTensorRecord] = [:]
        func flatten(_ d: PickleDict, _ prefix: String) {
            for (k, v) in d.items {
                let key: String
                switch k {
                case let .string(s): key = s
                case let .int(n): key = String(n)
                default: continue
                }
                switch v {
                case let .tensor(t): records[prefix + key] = t
                case let .dict(inner): flatten(inner, prefix + key + ".")
                default: continue
                }
            }
        }
        flatten(stateDict, "")
        for (name, r) in records {
            guard let range = storages[r.storage.key] else {
                throw TensorError(file: url, tensor: name, "its storage data/\(r.storage.key) is not in the archive")
            }
            guard range.count >= r.storage.count * r.storage.dtype.byteSize else {
                throw TensorError(file: url, tensor: name, "storage data/\(r.storage.key) holds \(range.count) bytes, needs \(r.storage.count * r.storage.dtype.byteSize)")
            }
            var last = r.offset
            for (size, stride) in zip(r.shape, r.stride) where size > 0 { last += (size - 1) * stride }
            guard r.offset >= 0, r.shape.allSatisfy({ $0 >= 0 }), r.shape.contains(0) || last < r.storage.count else {
                throw TensorError(file: url, tensor: name, "view (offset \(r.offset), size \(r.shape), stride \(r.stride)) exceeds its storage of \(r.storage.count) elements")
            }
        }
        self.records = records
    }

    /// State-dict names, sorted.
    public var names: [String] { records.keys.sorted() }

    /// Reads a tensor as a contiguous float32 `Tensor` (any strides, f32/f16/bf16/f64/int storage).
    public func tensor(named name: String) throws -> Tensor {
        guard let r = records[name] else { throw TensorError(file: url, tensor: name, "not present in the state dict") }
        guard let range = storages[r.storage.key] else {
            throw TensorError(file: url, tensor: name, "storage data/\(r.storage.key) missing")
        }
        let n = r.shape.reduce(1, *)
        var out = [Float](repeating: 0, count: n)
        let dtype = r.storage.dtype
        file.withBytes(range) { raw in
            func load(_ e: Int) -> Float {
                switch dtype {
                case .float32: raw.loadUnaligned(fromByteOffset: 4 * e, as: Float.self)
                case .float16: floatFromHalfBits(raw.loadUnaligned(fromByteOffset: 2 * e, as: UInt16.self))
                case .bfloat16: floatFromBFloat16Bits(raw.loadUnaligned(fromByteOffset: 2 * e, as: UInt16.self))
                case .float64: Float(raw.loadUnaligned(fromByteOffset: 8 * e, as: Double.self))
                case .int64: Float(raw.loadUnaligned(fromByteOffset: 8 * e, as: Int64.self))
                case .int32: Float(raw.loadUnaligned(fromByteOffset: 4 * e, as: Int32.self))
                }
            }
            // Contiguous row-major views (what state dicts nearly always hold): one pass, no index arithmetic.
            if r.isContiguous {
                out.withUnsafeMutableBufferPointer { o in
                    if dtype == .float32, n > 0 {
                        UnsafeMutableRawPointer(o.baseAddress!).copyMemory(from: raw.baseAddress! + 4 * r.offset, byteCount: 4 * n)
                    } else {
                        for k in 0..<n { o[k] = load(r.offset + k) }
                    }
                }
                return
            }
            r.forEachElementOffset { k, e in out[k] = load(e) }
        }
        file.releasePages(range)
        return Tensor(uncheckedShape: r.shape, data: out)
    }

    /// Reads a tensor as a `Weight`: float16/bfloat16 storage kept as stored under `.stored`
    /// (copied into a contiguous buffer whatever the view's strides), anything else widened as
    /// `tensor(named:)` does.
    public func weight(named name: String, precision: WeightPrecision) throws -> Weight {
        guard let r = records[name] else { throw TensorError(file: url, tensor: name, "not present in the state dict") }
        let dtype = r.storage.dtype
        guard precision == .stored, dtype == .float16 || dtype == .bfloat16 else {
            return Weight(try tensor(named: name))
        }
        guard let range = storages[r.storage.key] else {
            throw TensorError(file: url, tensor: name, "storage data/\(r.storage.key) missing")
        }
        let n = r.shape.reduce(1, *)
        var bits = [UInt16](repeating: 0, count: n)
        file.withBytes(range) { raw in
            bits.withUnsafeMutableBufferPointer { o in
                if r.isContiguous {
                    if n > 0 { UnsafeMutableRawPointer(o.baseAddress!).copyMemory(from: raw.baseAddress! + 2 * r.offset, byteCount: 2 * n) }
                    return
                }
                r.forEachElementOffset { k, e in o[k] = raw.loadUnaligned(fromByteOffset: 2 * e, as: UInt16.self) }
            }
        }
        file.releasePages(range)
        return try Weight(shape: r.shape, bits: bits, dtype: dtype == .bfloat16 ? .bf16 : .f16)
    }

    /// Every tensor, with the first matching prefix of `strippingPrefixes` removed from each name
    /// (e.g. `module.` from DataParallel, `model.` from GILL's wrapper).
    public func stateDict(strippingPrefixes prefixes: [String] = []) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for name in names {
            var key = name
            for p in prefixes where key.hasPrefix(p) { key = String(key.dropFirst(p.count)); break }
            guard out[key] == nil else {
                throw TensorError(file: url, tensor: name, "becomes '\(key)' after prefix stripping, which another tensor already has")
            }
            out[key] = try tensor(named: name)
        }
        return out
    }
}

/// The stored entries of a zip file, by name → byte range of the entry's data.
enum ZipDirectory {
    static func read(_ b: UnsafeRawBufferPointer, url: URL) throws -> [String: Range<Int>] {
        func u16(_ o: Int) -> Int { Int(b.loadUnaligned(fromByteOffset: o, as: UInt16.self).littleEndian) }
        func u32(_ o: Int) -> Int { Int(b.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian) }
        func u64(_ o: Int) -> Int { Int(b.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian) }
        // End of central directory: the last "PK\5\6" within the final 64 KiB + 22 bytes.
        var eocd = -1
        var o = b.count - 22
        while o >= max(0, b.count - 22 - 65_535) {
            if u32(o) == 0x0605_4B50 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else { throw TensorError(file: url, "is not a zip file (no end-of-central-directory record)") }
        var entryCount = u16(eocd + 10), directoryOffset = u32(eocd + 16)
        // Zip64: torch writes a zip64 locator before the EOCD for large archives.
        if (directoryOffset == 0xFFFF_FFFF || entryCount == 0xFFFF), eocd >= 20, u32(eocd - 20) == 0x0706_4B50 {
            let record = u64(eocd - 20 + 8)
            guard record + 56 <= b.count, u32(record) == 0x0606_4B50 else {
                throw TensorError(file: url, "broken zip64 end-of-central-directory record")
            }
            entryCount = u64(record + 32)
            directoryOffset = u64(record + 48)
        }
        var entries: [String: Range<Int>] = [:]
        var p = directoryOffset
        for _ in 0..<entryCount {
            guard p + 46 <= b.count, u32(p) == 0x0201_4B50 else {
                throw TensorError(file: url, "broken zip central directory at byte \(p)")
            }
            let method = u16(p + 10)
            var compressed = u32(p + 20), size = u32(p + 24)
            let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
            var local = u32(p + 42)
            guard p + 46 + nameLength + extraLength <= b.count else {
                throw TensorError(file: url, "zip central directory entry runs past the end of the file")
            }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: b[(p + 46)..<(p + 46 + nameLength)]), as: UTF8.self)
            // Zip64 extended information (id 1): the 0xFFFFFFFF fields, in order size, compressed, offset.
            var x = p + 46 + nameLength
            while x + 4 <= p + 46 + nameLength + extraLength {
                let id = u16(x), length = u16(x + 2)
                if id == 1 {
                    var f = x + 4
                    if size == 0xFFFF_FFFF { size = u64(f); f += 8 }
                    if compressed == 0xFFFF_FFFF { compressed = u64(f); f += 8 }
                    if local == 0xFFFF_FFFF { local = u64(f) }
                }
                x += 4 + length
            }
            guard method == 0 else {
                throw TensorError(file: url, "zip entry '\(name)' is compressed (method \(method)); torch.save stores entries uncompressed")
            }
            guard local + 30 <= b.count, u32(local) == 0x0403_4B50 else {
                throw TensorError(file: url, "zip entry '\(name)': no local header at byte \(local)")
            }
            let start = local + 30 + u16(local + 26) + u16(local + 28)
            guard start + size <= b.count else {
                throw TensorError(file: url, "zip entry '\(name)' runs past the end of the file")
            }
            entries[name] = start..<(start + size)
            p += 46 + nameLength + extraLength + commentLength
        }
        return entries
    }
}
