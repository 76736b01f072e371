import Foundation

/// A little-endian binary writer for the plan cache: length-prefixed UTF-8 strings and fixed-width
/// integers, so a 90,000-item plan decodes in a fraction of the time JSON would take.
struct ByteWriter {
    private(set) var data = Data()

    mutating func u8(_ v: UInt8) { data.append(v) }

    mutating func u64(_ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
    }

    mutating func int(_ v: Int) { u64(UInt64(bitPattern: Int64(v))) }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { bytes in
            int(bytes.count)
            data.append(contentsOf: bytes)
        }
    }
}

/// Reads what ``ByteWriter`` wrote; any inconsistency throws ``Malformed`` (the cache entry is then unused).
struct ByteReader {
    struct Malformed: Error {}
    private let bytes: [UInt8]
    private var offset = 0

    init(_ data: Data) { bytes = [UInt8](data) }

    var atEnd: Bool { offset == bytes.count }

    mutating func u8() throws -> UInt8 {
        guard offset < bytes.count else { throw Malformed() }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u64() throws -> UInt64 {
        guard offset + 8 <= bytes.count else { throw Malformed() }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        offset += 8
        return v
    }

    mutating func int() throws -> Int {
        let v = Int64(bitPattern: try u64())
        guard v >= Int64(Int.min), v <= Int64(Int.max) else { throw Malformed() }
        return Int(v)
    }

    mutating func string() throws -> String {
        let n = try int()
        guard n >= 0, offset + n <= bytes.count else { throw Malformed() }
        defer { offset += n }
        return bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[offset..<(offset + n)]), as: UTF8.self) }
    }
}
