import Foundation

/// The element types of the safetensors format.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case i64 = "I64", u64 = "U64", f64 = "F64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e4m3, .f8e5m2: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .i64, .u64, .f64: 8
        }
    }
}

/// One entry of a safetensors header.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: SafetensorsDType
    public var shape: [Int]
    /// Byte range relative to the start of the data section (after the header).
    public var dataOffsets: Range<Int>
}

/// A memory-mapped `.safetensors` file with a validated header.
///
/// Opening checks everything that can be checked without reading tensor data: the 8-byte
/// little-endian header length, that the header is a JSON object, every dtype, that each
/// shape's byte size equals its offset range, that ranges lie inside the file and do not
/// overlap. Tensors are converted to float32 when read.
public final class SafetensorsFile: Sendable {
    public let url: URL
    /// Header entries by tensor name.
    public let tensors: [String: SafetensorsTensorInfo]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    public init(url: URL) throws {
        self.url = url
        file = try MappedFile(url: url)
        guard file.count >= 8 else {
            throw TensorError(file: url, "truncated: \(file.count) bytes, too short for the 8-byte header length")
        }
        let headerLength = file.withBytes(0..<8) { raw in
            (0..<8).reduce(UInt64(0)) { $0 | UInt64(raw[$1]) << (8 * UInt64($1)) }
        }
        guard headerLength <= UInt64(file.count - 8) else {
            throw TensorError(file: url, "truncated or corrupt: header length \(headerLength) exceeds the \(file.count - 8) bytes after it")
        }
        dataStart = 8 + Int(headerLength)
        let headerData = file.withBytes(8..<dataStart) { Data($0) }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw TensorError(file: url, "header is not valid JSON (\(headerLength) bytes): \(error.localizedDescription)")
        }
        guard let object = json as? [String: Any] else {
            throw TensorError(file: url, "header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var infos: [String: SafetensorsTensorInfo] = [:]
        let dataLength = file.count - dataStart
        for (name, value) in object {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw TensorError(file: url, "__metadata__ is not a JSON object")
                }
                for (k, v) in map {
                    guard let s = v as? String else {
                        throw TensorError(file: url, "__metadata__ value for '\(k)' is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            infos[name] = try Self.parseEntry(name: name, value: value, dataLength: dataLength, url: url)
        }
        // Non-overlap: sort by start and check each range ends before the next begins.
        let sorted = infos.values.filter { !$0.dataOffsets.isEmpty }.sorted { $0.dataOffsets.lowerBound < $1.dataOffsets.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.dataOffsets.upperBound > b.dataOffsets.lowerBound {
            throw TensorError(file: url, tensor: b.name,
                                   "data offsets \(b.dataOffsets) overlap tensor '\(a.name)' at \(a.dataOffsets)")
        }
        self.tensors = infos
        self.metadata = metadata
    }

    private static func parseEntry(name: String, value: Any, dataLength: Int, url: URL) throws -> SafetensorsTensorInfo {
        guard let entry = value as? [String: Any] else {
            throw TensorError(file: url, tensor: name, "header entry is not a JSON object")
        }
        guard let dtypeName = entry["dtype"] as? String else {
            throw TensorError(file: url, tensor: name, "missing string 'dtype'")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw TensorError(file: url, tensor: name, "unknown dtype '\(dtypeName)' (expected one of \(SafetensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let shapeValues = entry["shape"] as? [Any], let shape = integers(shapeValues), shape.allSatisfy({ $0 >= 0 }) else {
            throw TensorError(file: url, tensor: name, "'shape' must be an array of non-negative integers")
        }
        guard let offsetValues = entry["data_offsets"] as? [Any], let offsets = integers(offsetValues), offsets.count == 2 else {
            throw TensorError(file: url, tensor: name, "'data_offsets' must be an array of two integers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end else {
            throw TensorError(file: url, tensor: name, "data offsets [\(begin), \(end)] are not an increasing pair")
        }
        guard end <= dataLength else {
            throw TensorError(file: url, tensor: name, "truncated: data offsets [\(begin), \(end)] run past the \(dataLength) data bytes in the file")
        }
        guard let count = try? Tensor.elementCount(shape),
              case let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize), !overflow,
              bytes == end - begin else {
            throw TensorError(file: url, tensor: name, "shape \(shape) of \(dtype.rawValue) needs a different byte size than its data offsets [\(begin), \(end)]")
        }
        return SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    /// JSON numbers as Ints, or nil if any is not an integer.
    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            guard let n = v as? NSNumber else { return nil }
            let d = n.doubleValue
            guard d == d.rounded(), abs(d) < 9.0e15 else { return nil }
            out.append(n.intValue)
        }
        return out
    }

    /// Tensor names in the file, sorted.
    public var names: [String] { tensors.keys.sorted() }

    /// Reads a tensor as float32, converting F16/BF16 (and F64) values.
    public func tensor(named name: String) throws -> Tensor {
        guard let info = tensors[name] else {
            throw TensorError(file: url, tensor: name, "not present in the file")
        }
        let n = info.dataOffsets.count / info.dtype.byteSize
        let range = (dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound)
        var out = [Float](repeating: 0, count: n)
        try file.withBytes(range) { raw in
            try out.withUnsafeMutableBufferPointer { dst in
                guard let o = dst.baseAddress, n > 0 else { return }
                switch info.dtype {
                case .f32:
                    // memcpy-safe on any alignment; the format is little-endian, as is every host we run on.
                    UnsafeMutableRawPointer(o).copyMemory(from: raw.baseAddress!, byteCount: n * 4)
                case .f16:
                    for i in 0..<n { o[i] = floatFromHalfBits(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
                case .bf16:
                    for i in 0..<n { o[i] = floatFromBFloat16Bits(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
                case .f64:
                    for i in 0..<n { o[i] = Float(raw.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
                default:
                    throw TensorError(file: url, tensor: name, "dtype \(info.dtype.rawValue) cannot be read as float (supported: F32, F16, BF16, F64)")
                }
            }
        }
        file.releasePages(range)
        return Tensor(uncheckedShape: info.shape, data: out)
    }

    /// Reads a tensor as a `Weight`: F16/BF16 kept as stored under `.stored`, everything else (and
    /// everything under `.float32`) widened as `tensor(named:)` does.
    public func weight(named name: String, precision: WeightPrecision) throws -> Weight {
        guard let info = tensors[name] else {
            throw TensorError(file: url, tensor: name, "not present in the file")
        }
        guard precision == .stored, info.dtype == .f16 || info.dtype == .bf16 else {
            return Weight(try tensor(named: name))
        }
        let n = info.dataOffsets.count / 2
        let range = (dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound)
        var bits = [UInt16](repeating: 0, count: n)
        file.withBytes(range) { raw in
            bits.withUnsafeMutableBytes { dst in
                if n > 0 { dst.baseAddress!.copyMemory(from: raw.baseAddress!, byteCount: 2 * n) }
            }
        }
        file.releasePages(range)
        return try Weight(shape: info.shape, bits: bits, dtype: info.dtype == .bf16 ? .bf16 : .f16)
    }

    /// The raw bytes of a tensor's data, e.g. for hashing.
    public func withRawBytes<T>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        guard let info = tensors[name] else {
            throw TensorError(file: url, tensor: name, "not present in the file")
        }
        return try file.withBytes((dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound), body)
    }

    /// The whole file's bytes (header included), e.g. for content hashing.
    public func withFileBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try file.withBytes(0..<file.count, body)
    }
}
