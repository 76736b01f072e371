import Foundation
import Stories

/// A position in a workflow file (1-based line and column).
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }
    public var description: String { "\(file):\(line):\(column)" }
}

/// A problem in a workflow file, located at the offending key or value.
public struct WorkflowError: Error, CustomStringConvertible, Sendable, Equatable {
    public var location: SourceLocation?
    public var message: String
    public init(_ location: SourceLocation?, _ message: String) {
        self.location = location
        self.message = message
    }
    public var description: String {
        if let location { return "\(location): error: \(message)" }
        return "error: \(message)"
    }
}

/// All problems found while validating a workflow, reported together.
public struct WorkflowErrors: Error, CustomStringConvertible, Sendable {
    public var errors: [WorkflowError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Where a workflow's stories come from.
public enum CollectionSource: Sendable, Equatable {
    /// A native collection folder (or .jsonl file).
    case native(path: String)
    /// A dataset in another format: `vist-sis`, `vist-dii`, `visdial`, `csv`, with importer options.
    case importer(kind: String, options: [String: String])
    /// A StoryWorld set generated on demand (cached in the store under `worlds/`).
    case world(seed: UInt64, stories: Int, dialogues: Int, displaySize: Int?)
}

public struct CollectionSpec: Sendable {
    public var source: CollectionSource
    public var allowOutsideRoot: Bool
    /// Only the first N entries (for quick trials).
    public var limit: Int?
    public var location: SourceLocation?
}

public struct ModelSpec: Sendable {
    public var name: String
    public var kind: String
    public var path: String
    public var location: SourceLocation?
}

/// A reference to a value: a collection column (`image`, `text`, …) or a step output (`step.output`,
/// optionally `@last` to take the last panel's value of a panel step).
public struct InputRef: Sendable, Equatable, CustomStringConvertible {
    public enum Source: Sendable, Equatable {
        case column(String)
        case step(id: String, output: String?, lastPanel: Bool)
    }
    public var source: Source
    public var text: String
    public var location: SourceLocation?
    public var description: String { text }

    /// The step and output this names, reading a bare step id as that step's primary output (`nil`).
    func stepOutput<S>(steps: [String: S]) -> (id: String, output: String?)? {
        switch source {
        case .step(let id, let output, _): return (id, output)
        case .column(let c): return steps[c] != nil ? (c, nil) : nil
        }
    }
}

/// Which panels a panel step runs on.
public enum PanelSelection: Sendable, Equatable {
    case all, first, last
    case indices([Int])   // 1-based

    public func contains(_ index: Int, count: Int) -> Bool {
        switch self {
        case .all: return true
        case .first: return index == 0
        case .last: return index == count - 1
        case .indices(let list): return list.contains(index + 1)
        }
    }

    public var canonical: String {
        switch self {
        case .all: return "all"
        case .first: return "first"
        case .last: return "last"
        case .indices(let l): return l.map(String.init).joined(separator: ",")
        }
    }
}

public struct StepSpec: Sendable {
    public var id: String
    public var use: String
    /// Params as written (validated against the kind; defaults are applied when planning).
    public var params: [String: JSONValue]
    public var inputs: [String: InputRef]
    public var model: String?
    public var panels: PanelSelection
    /// Per panel or per entry (the kind's default unless the workflow chose).
    public var scope: StepScope
    public var batchSize: Int?
    public var location: SourceLocation?
    public var paramLocations: [String: SourceLocation]
}

public struct GallerySpec: Sendable {
    public var title: String?
    /// Columns to show (`step.output` references); empty means every image and score output.
    public var columns: [InputRef]
    /// Run-level charts of score means (e.g. CLIP similarity against context length).
    public var charts: [ChartRequest] = []
}

/// A chart in the run report: for each series, one score column per x label (`null` leaves a gap); each
/// point is that column's mean over the items it was computed for.
public struct ChartRequest: Sendable {
    public var title: String
    public var yLabel: String
    public var xLabels: [String]
    public var series: [(name: String, columns: [InputRef?])]
    /// `line` or `bar`.
    public var kind: String
    public var location: SourceLocation?
}

/// A parsed and validated workflow file.
public struct WorkflowSpec: Sendable {
    public var name: String
    public var file: URL
    public var collection: CollectionSpec
    public var models: [String: ModelSpec]
    /// Steps in file order (validated acyclic; `order` gives a topological order).
    public var steps: [StepSpec]
    public var gallery: GallerySpec
    /// The `store:` key as written, if given: a folder or a PostgreSQL URL (``storeAddress(_:)`` resolves it).
    public var store: String?
    /// The `media:` key as written: with a PostgreSQL store, the folder every node sees for its files.
    public var media: String? = nil
    /// The workflow's `description:`, shown under the gallery's title.
    public var about: String? = nil

    public var folder: URL { file.deletingLastPathComponent() }

    public func step(_ id: String) -> StepSpec? { steps.first { $0.id == id } }
}
