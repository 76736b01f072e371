import Foundation
import Stories

/// An image a step reads or writes: a media-store object or a collection file, named by content hash.
public struct ImageRef: Codable, Sendable, Hashable {
    /// SHA-256 of the file's bytes.
    public var hash: String
    /// File extension (`png`, `jpg`).
    public var ext: String
    /// Absolute path when the image is a collection file; `nil` for media-store objects (found by hash).
    public var path: String?

    public init(hash: String, ext: String, path: String? = nil) {
        self.hash = hash
        self.ext = ext
        self.path = path
    }
}

/// One ranked candidate of a retrieval: the pool item id and its score.
public struct Candidate: Codable, Sendable, Equatable {
    public var id: String
    public var score: Double
    public init(id: String, score: Double) {
        self.id = id
        self.score = score
    }
}

/// A value flowing between steps: what a step reads as input and writes as output.
public enum Value: Sendable, Equatable {
    case text(String)
    case number(Double)
    case image(ImageRef)
    /// A float32 vector (an embedding); stored as a BLOB in SQLite, not in JSON.
    case vector([Float])
    /// Ranked retrieval candidates, best first.
    case ranked([Candidate])
    /// A decision between named options with the probability of the chosen one.
    case choice(String, probability: Double)
    case list([Value])
    /// Named values that belong together, e.g. one image of a generated story with its decision and
    /// scores (stored as a JSON object; results stored before this case existed decode unchanged).
    case record([String: Value])

    public var text: String? { if case .text(let s) = self { return s }; return nil }
    public var number: Double? { if case .number(let n) = self { return n }; return nil }
    public var image: ImageRef? { if case .image(let r) = self { return r }; return nil }
    public var vector: [Float]? { if case .vector(let v) = self { return v }; return nil }
    public var list: [Value]? { if case .list(let l) = self { return l }; return nil }
    public var record: [String: Value]? { if case .record(let r) = self { return r }; return nil }

    /// A short human-readable rendering (for reports and `explain`).
    public var summary: String {
        switch self {
        case .text(let s): return s.count > 80 ? String(s.prefix(77)) + "…" : s
        case .number(let n): return String(format: "%.4f", n)
        case .image(let r): return "image \(r.hash.prefix(12)).\(r.ext)"
        case .vector(let v): return "vector[\(v.count)]"
        case .ranked(let c): return c.prefix(3).map { "\($0.id) (\(String(format: "%.3f", $0.score)))" }.joined(separator: ", ")
        case .choice(let c, let p): return "\(c) (p=\(String(format: "%.2f", p)))"
        case .list(let l): return "[\(l.count) values]"
        case .record(let r): return "{" + r.keys.sorted().joined(separator: ", ") + "}"
        }
    }
}

extension Value: Codable {
    enum CodingKeys: String, CodingKey { case text, number, image, vector, ranked, choice, probability, list, record }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let s = try c.decodeIfPresent(String.self, forKey: .text) { self = .text(s) }
        else if let n = try c.decodeIfPresent(Double.self, forKey: .number) { self = .number(n) }
        else if let r = try c.decodeIfPresent(ImageRef.self, forKey: .image) { self = .image(r) }
        else if let v = try c.decodeIfPresent([Float].self, forKey: .vector) { self = .vector(v) }
        else if let r = try c.decodeIfPresent([Candidate].self, forKey: .ranked) { self = .ranked(r) }
        else if let ch = try c.decodeIfPresent(String.self, forKey: .choice) {
            self = .choice(ch, probability: try c.decode(Double.self, forKey: .probability))
        } else if let l = try c.decodeIfPresent([Value].self, forKey: .list) { self = .list(l) }
        else if let r = try c.decodeIfPresent([String: Value].self, forKey: .record) { self = .record(r) }
        else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown value")) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .text(let s): try c.encode(s, forKey: .text)
        case .number(let n): try c.encode(n, forKey: .number)
        case .image(var r): r.path = nil; try c.encode(r, forKey: .image)
        case .vector(let v): try c.encode(v, forKey: .vector)
        case .ranked(let r): try c.encode(r, forKey: .ranked)
        case .choice(let ch, let p): try c.encode(ch, forKey: .choice); try c.encode(p, forKey: .probability)
        case .list(let l): try c.encode(l, forKey: .list)
        case .record(let r): try c.encode(r, forKey: .record)
        }
    }
}

/// A step's outputs for one item, by output name.
public typealias Outputs = [String: Value]

/// JSON coding for stored outputs and run summaries: the one place for it. JSON has no NaN or infinity,
/// but metrics produce them (PSNR of identical images is +inf), so they are kept as strings.
public enum OutputCoding {
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }
    public static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}
