import Foundation
import Testing
@testable import Tensor

/// The safetensors reader's validation, dtype conversion, writer round trips and shards.
@Suite("safetensors")
struct SafetensorsTests {
    static func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A file from a raw header string and data bytes.
    static func raw(_ header: String, data: [UInt8], in dir: URL, name: String = "t.safetensors", declaredLength: UInt64? = nil) throws -> URL {
        var bytes = Data()
        var n = (declaredLength ?? UInt64(header.utf8.count)).littleEndian
        withUnsafeBytes(of: &n) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array(header.utf8))
        bytes.append(contentsOf: data)
        let url = dir.appendingPathComponent(name)
        try bytes.write(to: url)
        return url
    }

    static func errorText(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        return "no error"
    }

    @Test("F32/F16/BF16 round trip through the writer and reader")
    func roundTrip() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let values: [Float] = [0, -0, 1, -2.5, 65504, 1e-7, 6.1e-5, 3.14159, -1e5]
        let t = try Tensor(shape: [3, 3], data: values)
        for type in [SafetensorsWriter.StorageType.f32, .f16, .bf16] {
            let url = dir.appendingPathComponent("\(type.rawValue).safetensors")
            try SafetensorsWriter.write(["w": t, "b": Tensor(zeros: [2], value: 1)], to: url, as: type, metadata: ["format": "pt"])
            let f = try SafetensorsFile(url: url)
            #expect(f.metadata == ["format": "pt"])
            #expect(f.names == ["b", "w"])
            let back = try f.tensor(named: "w")
            #expect(back.shape == [3, 3])
            switch type {
            case .f32: #expect(back.data == values)
            case .f16:
                #expect(back.data.map { $0.bitPattern } == values.map { floatFromHalfBits(halfBitsFromFloat($0)).bitPattern })
                #expect(back.data[4] == 65504 && back.data[2] == 1 && back.data[3] == -2.5)
                #expect(back.data[8] == -.infinity)  // below -65504 overflows f16
            case .bf16:
                #expect(back.data[3] == -2.5 && abs(back.data[7] - 3.140625) < 1e-6)
            }
        }
    }

    @Test("F16 and BF16 bit conversions: normals, subnormals, infinities, NaN, rounding")
    func halfBits() {
        #expect(floatFromHalfBits(0x3C00) == 1)
        #expect(floatFromHalfBits(0xC000) == -2)
        #expect(floatFromHalfBits(0x7BFF) == 65504)
        #expect(floatFromHalfBits(0x0001) == 5.9604644775390625e-8)  // smallest subnormal
        #expect(floatFromHalfBits(0x03FF) == 6.097555160522461e-05)  // largest subnormal
        #expect(floatFromHalfBits(0x7C00) == .infinity && floatFromHalfBits(0xFC00) == -.infinity)
        #expect(floatFromHalfBits(0x7E00).isNaN)
        #expect(floatFromHalfBits(0x8000).sign == .minus)
        // Every finite half survives half → float → half.
        for bits in UInt16(0)...UInt16.max where (bits & 0x7C00) != 0x7C00 {
            if halfBitsFromFloat(floatFromHalfBits(bits)) != bits { Issue.record("half \(bits) does not round-trip"); break }
        }
        #expect(halfBitsFromFloat(1 + 1.0 / 2048) == 0x3C00)  // tie → even
        #expect(halfBitsFromFloat(1 + 3.0 / 2048) == 0x3C02)  // tie → even (up)
        #expect(halfBitsFromFloat(70000) == 0x7C00)
        #expect(floatFromBFloat16Bits(0x3F80) == 1)
        #expect(floatFromBFloat16Bits(0xC020) == -2.5)
        #expect(bfloat16BitsFromFloat(1.00390625) == 0x3F80)  // tie → even
        #expect(bfloat16BitsFromFloat(.nan) & 0x7FC0 == 0x7FC0)
    }

    @Test("truncated files")
    func truncated() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let short = dir.appendingPathComponent("short.safetensors")
        try Data([1, 2, 3]).write(to: short)
        #expect(Self.errorText { _ = try SafetensorsFile(url: short) }.contains("too short"))
        let header = #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        let cut = try Self.raw(header, data: [UInt8](repeating: 0, count: 8), in: dir)
        let m = Self.errorText { _ = try SafetensorsFile(url: cut) }
        #expect(m.contains("t.safetensors") && m.contains("'w'") && m.contains("truncated"), "\(m)")
        let bigHeader = try Self.raw(header, data: [], in: dir, name: "h.safetensors", declaredLength: 1 << 40)
        #expect(Self.errorText { _ = try SafetensorsFile(url: bigHeader) }.contains("header length"))
        // A file written by the writer and then cut.
        let good = dir.appendingPathComponent("good.safetensors")
        let encoded = try SafetensorsWriter.encode(["x": Tensor(zeros: [64])])
        try encoded.prefix(encoded.count - 10).write(to: good)
        #expect(Self.errorText { _ = try SafetensorsFile(url: good) }.contains("'x'"))
    }

    @Test("bad headers")
    func badHeader() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [(String, String)] = [
            ("{not json", "not valid JSON"),
            ("[1,2]", "not a JSON object"),
            (#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, "missing string 'dtype'"),
            (#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, "'shape'"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, "increasing pair"),
            (#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, "byte size"),
            (#"{"__metadata__":{"a":1}}"#, "not a string"),
        ]
        for (header, expected) in cases {
            let url = try Self.raw(header, data: [UInt8](repeating: 0, count: 8), in: dir)
            let m = Self.errorText { _ = try SafetensorsFile(url: url) }
            #expect(m.contains(expected) && m.contains("t.safetensors"), "\(header) → \(m)")
        }
    }

    @Test("overlapping offsets name both tensors")
    func overlap() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let url = try Self.raw(header, data: [UInt8](repeating: 0, count: 12), in: dir)
        let m = Self.errorText { _ = try SafetensorsFile(url: url) }
        #expect(m.contains("overlap") && m.contains("'a'") && m.contains("'b'"), "\(m)")
    }

    @Test("unknown and unsupported dtypes")
    func dtypes() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let unknown = try Self.raw(#"{"w":{"dtype":"F12","shape":[1],"data_offsets":[0,2]}}"#, data: [0, 0], in: dir)
        let m = Self.errorText { _ = try SafetensorsFile(url: unknown) }
        #expect(m.contains("unknown dtype 'F12'") && m.contains("'w'"), "\(m)")
        // I64 is a valid dtype (position_ids buffers) but not readable as float.
        let ints = try Self.raw(#"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8), in: dir, name: "i.safetensors")
        let f = try SafetensorsFile(url: ints)
        #expect(f.tensors["ids"]?.dtype == .i64)
        #expect(Self.errorText { _ = try f.tensor(named: "ids") }.contains("cannot be read as float"))
        #expect(Self.errorText { _ = try f.tensor(named: "nope") }.contains("not present"))
    }

    @Test("shape mismatch against the config, missing and unused tensors")
    func reader() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try SafetensorsWriter.write(["a.weight": Tensor(zeros: [2, 3]), "a.bias": Tensor(zeros: [2]), "extra": Tensor(zeros: [1])],
                                    to: dir.appendingPathComponent("model.safetensors"))
        let reader = CheckpointReader(try Checkpoint(url: dir))
        let m = Self.errorText { _ = try reader.take("a.weight", shape: [3, 2]) }
        #expect(m.contains("model.safetensors") && m.contains("'a.weight'") && m.contains("[2, 3]") && m.contains("config.json implies [3, 2]"), "\(m)")
        #expect(Self.errorText { _ = try reader.take("b.weight", shape: [1]) }.contains("missing"))
        _ = try reader.take("a.weight", shape: [2, 3])
        _ = try reader.take("a.bias", shape: [2])
        #expect(reader.unused == ["extra"])
        #expect(Self.errorText { try reader.requireAllUsed() }.contains("extra"))
        reader.ignore("extra")
        try reader.requireAllUsed()
    }

    @Test("sharded checkpoint through model.safetensors.index.json")
    func shards() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try SafetensorsWriter.write(["a": Tensor(zeros: [2], value: 1)], to: dir.appendingPathComponent("model-00001-of-00002.safetensors"))
        try SafetensorsWriter.write(["b": Tensor(zeros: [3], value: 2)], to: dir.appendingPathComponent("model-00002-of-00002.safetensors"), as: .f16)
        let index = #"{"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#
        try Data(index.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let c = try Checkpoint(url: dir)
        #expect(c.names == ["a", "b"])
        #expect(try c.tensor(named: "b").data == [2, 2, 2])
        // An index entry pointing at the wrong shard is named.
        let wrong = #"{"weight_map":{"a":"model-00002-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#
        try Data(wrong.utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let m = Self.errorText { _ = try Checkpoint(url: dir) }
        #expect(m.contains("'a'") && m.contains("not present in the shard"), "\(m)")
        let empty = try Self.tempDir()
        defer { try? FileManager.default.removeItem(at: empty) }
        #expect(Self.errorText { _ = try Checkpoint(url: empty) }.contains("no model.safetensors"))
    }
}
