import Foundation
import Stories
import Store

/// What an item's fingerprint hashes: the step kind and its implementation version, the params that affect
/// results, the fingerprint of every input value, the model's digest and (for stochastic steps) the item's
/// seed. Stored with each item state so that `plan` and `explain` can say what changed.
///
/// The canonical form is JSON with sorted keys and no whitespace (what `JSONEncoder` with `.sortedKeys`
/// writes); the fingerprint is its SHA-256. ``Builder`` writes the same bytes without an encoder per item,
/// since a plan builds one per item (90,000 in `bench cache`).
public struct FingerprintComponents: Codable, Sendable, Equatable {
    /// Input name → fingerprint of the value it reads (`missing` when there is none).
    public var inputs: [String: String]
    public var kind: String
    /// The model's digest ("" for steps without a model).
    public var model: String
    public var params: [String: JSONValue]
    public var seed: UInt64
    public var version: Int

    public static let missingInput = "missing"

    public init(inputs: [String: String], kind: String, model: String, params: [String: JSONValue], seed: UInt64, version: Int) {
        self.inputs = inputs
        self.kind = kind
        self.model = model
        self.params = params
        self.seed = seed
        self.version = version
    }

    /// The canonical JSON (sorted keys, no whitespace).
    public func canonicalJSON() throws -> String {
        String(decoding: try Self.encoder.encode(self), as: UTF8.self)
    }

    /// Reads stored components; nil for a record this version cannot read.
    public static func decode(_ data: Data) -> FingerprintComponents? {
        try? JSONDecoder().decode(FingerprintComponents.self, from: data)
    }

    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// Writes the canonical JSON of one step's items: everything but the inputs and the seed is encoded once.
    struct Builder {
        let head: String   // {"inputs":{
        let tail: String   // },"kind":…,"params":…,"seed":
        let version: String

        init(kind: StepKind, model: ResolvedModel?, params: [String: JSONValue]) throws {
            let encoder = FingerprintComponents.encoder
            let paramsJSON = String(decoding: try encoder.encode(params), as: UTF8.self)
            let kindJSON = String(decoding: try encoder.encode(kind.name), as: UTF8.self)
            let modelJSON = String(decoding: try encoder.encode(model?.digest ?? ""), as: UTF8.self)
            head = "{\"inputs\":{"
            tail = "},\"kind\":\(kindJSON),\"model\":\(modelJSON),\"params\":\(paramsJSON),\"seed\":"
            version = ",\"version\":\(kind.version)}"
        }

        /// Everything but the inputs and the seed, as written into every item's components.
        var signature: String { head + tail + version }

        /// `inputs` sorted by name; names are identifiers and fingerprints hex (with `.output`), so neither
        /// needs escaping.
        func json(inputs: [(name: String, fingerprint: String)], seed: UInt64) -> String {
            var s = head
            for (i, input) in inputs.enumerated() {
                if i > 0 { s += "," }
                s += "\"\(input.name)\":\"\(input.fingerprint)\""
            }
            return s + tail + String(seed) + version
        }
    }
}
