import Foundation

/// Writes `.safetensors` files (F32, F16 or BF16) for tests and tools.
public enum SafetensorsWriter {
    /// Element type to store.
    public enum StorageType: String, Sendable {
        case f32 = "F32", f16 = "F16", bf16 = "BF16"
        var byteSize: Int { self == .f32 ? 4 : 2 }
    }

    /// Serialises named tensors: 8-byte header length, a JSON header with tensors in name
    /// order (padded with spaces to an 8-byte boundary, as the reference writer does), then data.
    public static func encode(_ tensors: [String: Tensor], as type: StorageType = .f32,
                              metadata: [String: String] = [:]) throws -> Data {
        let names = tensors.keys.sorted()
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let meta = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(meta.joined(separator: ","))}")
        }
        var offset = 0
        for name in names {
            guard name != "__metadata__" else { throw TensorError("safetensors: '__metadata__' is not a valid tensor name") }
            let t = tensors[name]!
            let bytes = t.count * type.byteSize
            parts.append("\(jsonString(name)):{\"dtype\":\"\(type.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += parts.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }
        var out = Data(capacity: 8 + headerBytes.count + offset)
        var length = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for name in names {
            let t = tensors[name]!
            switch type {
            case .f32:
                t.data.withUnsafeBytes { out.append(contentsOf: $0) }
            case .f16:
                let bits = t.data.map { halfBitsFromFloat($0).littleEndian }
                bits.withUnsafeBytes { out.append(contentsOf: $0) }
            case .bf16:
                let bits = t.data.map { bfloat16BitsFromFloat($0).littleEndian }
                bits.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }
        return out
    }

    /// Writes `encode(tensors, as:metadata:)` to `url` atomically.
    public static func write(_ tensors: [String: Tensor], to url: URL, as type: StorageType = .f32,
                             metadata: [String: String] = [:]) throws {
        try encode(tensors, as: type, metadata: metadata).write(to: url, options: .atomic)
    }

    private static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
