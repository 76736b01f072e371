import Foundation
import Stories
import Store

/// Whether a step runs once per panel or once per entry (story or dialogue).
public enum StepScope: String, Sendable, Codable {
    case panel, entry
}

/// A parameter a step kind accepts, its type, default, and whether it changes results.
public struct ParamSpec: Sendable {
    public enum Kind: Sendable, Equatable {
        case int(min: Int?, max: Int?)
        case double(min: Double?, max: Double?)
        case string
        case bool
        case choice([String])
        case stringList
    }

    public var name: String
    public var kind: Kind
    /// `nil` means the parameter is required.
    public var defaultValue: JSONValue?
    /// Parameters that cannot change a result (batch size, timeouts) stay out of the fingerprint.
    public var affectsResult: Bool
    public var doc: String

    public init(_ name: String, _ kind: Kind, default defaultValue: JSONValue?, affectsResult: Bool = true, doc: String) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.affectsResult = affectsResult
        self.doc = doc
    }
}

/// An input slot of a step kind.
public struct InputSpec: Sendable {
    public var name: String
    public var required: Bool
    /// An aggregate input receives the referenced column over *all* items (a retrieval pool), and the
    /// item's fingerprint then depends on every one of them.
    public var aggregate: Bool
    public var doc: String

    public init(_ name: String, required: Bool = true, aggregate: Bool = false, doc: String) {
        self.name = name
        self.required = required
        self.aggregate = aggregate
        self.doc = doc
    }
}

/// A step kind: what `use:` names in a workflow. Declares its params, inputs and outputs, and makes a
/// runner for a configured step.
public struct StepKind: Sendable {
    public var name: String
    /// Bumped when the implementation changes results; part of every fingerprint.
    public var version: Int
    public var summary: String
    /// The default scope.
    public var scope: StepScope
    /// Whether a workflow may set `scope:` to the other value (e.g. `score` per panel or per entry).
    public var scopeSelectable: Bool
    /// Outputs that are scores (numbers summarised as mean ± 95% interval in run summaries and charted in the
    /// report). Steps without any skip that pass, which keeps a no-op rerun from reading every result.
    public var scoreOutputs: [String]
    /// Whether `model:` may be left out (a step whose model use depends on its params).
    public var modelOptional: Bool
    /// Derived from the kind's ``StepParams`` struct.
    public var params: [ParamSpec]
    public var inputs: [InputSpec]
    /// Output names; the first is the primary output (what `stepid` alone refers to).
    public var outputs: [String]
    /// Stochastic steps get a per-item seed (derived from the `seed` param and the item id).
    public var stochastic: Bool
    /// Model kinds this step can use (`clip`, `stable-diffusion`, `gill`); empty when it uses none.
    public var modelKinds: [String]
    public var defaultBatchSize: Int
    /// Every param's value, defaults applied, as the params struct encodes it (the fingerprint's params).
    public var resolveParams: @Sendable ([String: JSONValue]) throws -> [String: JSONValue]
    /// Builds the runner once per run (models are loaded here, not per batch).
    public var makeRunner: @Sendable (StepConfiguration) throws -> any StepRunner

    /// - Parameters:
    ///   - params: the kind's params struct; the runner receives it decoded, defaults applied.
    ///   - makeRunner: builds the runner from the decoded params and the configured step.
    public init<P: StepParams>(name: String, version: Int, summary: String, scope: StepScope, params: P.Type,
                               inputs: [InputSpec], outputs: [String], stochastic: Bool = false, modelKinds: [String] = [],
                               defaultBatchSize: Int = 16, scopeSelectable: Bool = false, modelOptional: Bool = false,
                               scoreOutputs: [String] = [],
                               makeRunner: @escaping @Sendable (P, StepConfiguration) throws -> any StepRunner) {
        self.name = name
        self.version = version
        self.summary = summary
        self.scope = scope
        self.scopeSelectable = scopeSelectable
        self.modelOptional = modelOptional
        self.scoreOutputs = scoreOutputs
        self.params = P.specs
        self.inputs = inputs
        self.outputs = outputs
        self.stochastic = stochastic
        self.modelKinds = modelKinds
        self.defaultBatchSize = defaultBatchSize
        self.resolveParams = { try P.decode($0).values }
        self.makeRunner = { config in try makeRunner(try P.decode(config.params), config) }
    }

    public func param(_ name: String) -> ParamSpec? { params.first { $0.name == name } }
}

/// The model entry a step uses, resolved to a folder and its digest.
public struct ResolvedModel: Sendable {
    public var name: String
    public var kind: String
    public var folder: URL
    /// SHA-256 over the folder's files (config and weights); part of fingerprints.
    public var digest: String
}

/// Everything a runner needs to know about its configured step.
public struct StepConfiguration: Sendable {
    public var stepID: String
    public var kind: String
    /// Validated params with defaults applied.
    public var params: [String: JSONValue]
    public var model: ResolvedModel?
    public var collection: StoryCollection
    /// Folder of the workflow file; relative paths in params resolve against it.
    public var workflowFolder: URL
    public var media: MediaStore
    /// Whether paths in params may leave the workflow folder.
    public var allowOutsideRoot: Bool

}

/// One item handed to a runner: the entry, the panel (for panel steps), and resolved input values.
public struct StepItem: Sendable {
    /// `story-00001` for entry steps, `story-00001#3` for panel 3.
    public var id: String
    public var entry: Entry
    /// 0-based panel index for panel steps.
    public var panelIndex: Int?
    public var inputs: [String: Value]
    /// Aggregate inputs: every (item id, value) of the referenced column.
    public var pools: [String: [(id: String, value: Value)]]
    /// Per-item seed for stochastic steps (stable for a given base seed and item id).
    public var seed: UInt64

    public var panel: Panel? { panelIndex.flatMap { entry.panels.indices.contains($0) ? entry.panels[$0] : nil } }
}

/// What a runner reports for one item: outputs, or the error that stopped it.
public enum ItemOutcome: Sendable {
    case success(Outputs)
    case failure(String)
}

/// Services a runner uses while it works.
public struct StepServices: Sendable {
    public var media: MediaStore
    /// Polled between items (and between denoising steps): true once the run is being cancelled.
    public var isCancelled: @Sendable () -> Bool
    /// Reports progress within the current batch as (done, total) sub-steps; for long items.
    public var progress: @Sendable (_ done: Int, _ total: Int) -> Void

    public init(media: MediaStore, isCancelled: @escaping @Sendable () -> Bool,
                progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) {
        self.media = media
        self.isCancelled = isCancelled
        self.progress = progress
    }

    /// Loads an image input from the collection or the media store (checked against its hash there).
    public func loadImageData(_ ref: ImageRef) throws -> Data {
        guard let path = ref.path else { return try media.read(hash: ref.hash, ext: ref.ext) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StepError("image \(path) is missing")
        }
        return data
    }

    public func imageURL(_ ref: ImageRef) -> URL {
        ref.path.map { URL(fileURLWithPath: $0) } ?? media.url(hash: ref.hash, ext: ref.ext)
    }
}

/// Runs batches of items for one configured step.
public protocol StepRunner: Sendable {
    /// Returns one outcome per item, in order. Throwing fails the whole batch (each item gets the error).
    func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome]
}

/// An error raised by a step for one item or a batch.
public struct StepError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The step kinds a workflow can `use:`.
public struct StepRegistry: Sendable {
    public private(set) var kinds: [String: StepKind] = [:]

    public init(_ kinds: [StepKind] = []) {
        for k in kinds { register(k) }
    }

    public mutating func register(_ kind: StepKind) { kinds[kind.name] = kind }
    public subscript(name: String) -> StepKind? { kinds[name] }
    public var names: [String] { kinds.keys.sorted() }
}
