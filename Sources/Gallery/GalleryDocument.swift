import Foundation

/// Everything a gallery shows, as plain data. The workflow layer fills it from the store; the
/// ``GalleryWriter`` turns it into a static HTML folder. Nothing here is HTML: all strings are user text
/// and are escaped when rendered.
public struct GalleryDocument: Sendable {
    public var title: String
    public var workflowName: String
    /// When the gallery was rendered (ISO 8601), shown in the footer.
    public var generatedAt: String
    /// Image and value sources shown per panel or per entry, in display order.
    public var columns: [GalleryColumn]
    public var entries: [GalleryEntry]
    public var report: RunReport
    /// The workflow's description (plain text), shown under the title of the index page.
    public var about: String?

    public init(title: String, workflowName: String, generatedAt: String, columns: [GalleryColumn],
                entries: [GalleryEntry], report: RunReport, about: String? = nil) {
        self.title = title
        self.about = about
        self.workflowName = workflowName
        self.generatedAt = generatedAt
        self.columns = columns
        self.entries = entries
        self.report = report
    }
}

/// A column of the gallery: ground truth, or one step output.
public struct GalleryColumn: Sendable, Equatable {
    public var id: String          // e.g. "ground-truth", "gen.image", "clipsim.score"
    public var label: String       // shown in headers
    public init(id: String, label: String) {
        self.id = id
        self.label = label
    }
}

/// A file to show: the writer copies it into the gallery folder, named by its content hash.
public struct MediaFile: Sendable, Equatable, Hashable {
    /// Absolute path of the source file (collection image or media store object).
    public var path: String
    /// Content hash (hex) when known; used as the file name in the gallery.
    public var hash: String?
    public init(path: String, hash: String? = nil) {
        self.path = path
        self.hash = hash
    }
}

/// One value shown in a cell.
public enum CellValue: Sendable, Equatable {
    case text(String)
    case number(Double)
    case image(MediaFile, caption: String?)
    /// Ranked candidates, e.g. retrieved images with their scores.
    case ranked([RankedImage])
    /// A retrieve-or-generate decision with the probability of the chosen option.
    case decision(choice: String, probability: Double, detail: String?)
    /// Generated interleaved text and images (GILL continuing a story), read after the entry's first
    /// `afterPanel` panels when known.
    case sequence([SequencePiece], afterPanel: Int?)
    case failed(error: String)
}

/// A piece of a generated sequence: text, or an image with what chose it.
public enum SequencePiece: Sendable, Equatable {
    case text(String)
    /// The image shown, the decision that chose it with its probability, and the scores behind it
    /// (name, value), plus the other candidate images (label, image).
    case image(MediaFile?, decision: String, probability: Double?, scores: [SequenceScore], alternatives: [SequenceAlternative])
}

public struct SequenceScore: Sendable, Equatable {
    public var name: String
    public var value: Double
    public init(name: String, value: Double) {
        self.name = name
        self.value = value
    }
}

public struct SequenceAlternative: Sendable, Equatable {
    public var label: String
    public var image: MediaFile?
    public var score: Double?
    public init(label: String, image: MediaFile?, score: Double?) {
        self.label = label
        self.image = image
        self.score = score
    }
}

public struct RankedImage: Sendable, Equatable {
    public var id: String
    public var image: MediaFile?
    public var score: Double
    public init(id: String, image: MediaFile?, score: Double) {
        self.id = id
        self.image = image
        self.score = score
    }
}

/// One panel row: its text, ground-truth image, and step outputs by column id.
public struct GalleryPanel: Sendable {
    public var index: Int                 // 1-based
    public var text: String
    public var groundTruth: MediaFile?
    public var cells: [String: CellValue]
    public init(index: Int, text: String, groundTruth: MediaFile?, cells: [String: CellValue] = [:]) {
        self.index = index
        self.text = text
        self.groundTruth = groundTruth
        self.cells = cells
    }
}

/// A story or dialogue page.
public struct GalleryEntry: Sendable {
    public var id: String
    public var kind: String               // "story" or "dialogue"
    public var panels: [GalleryPanel]
    /// Dialogue rounds as (question, answer).
    public var rounds: [(question: String, answer: String)]
    /// Entry-level outputs by column id (e.g. a generated last panel, a decision).
    public var cells: [String: CellValue]
    /// Numeric scores by name, used by the index for filtering and sorting.
    public var scores: [String: Double]
    /// Import warnings and item failures.
    public var problems: [String]

    public init(id: String, kind: String, panels: [GalleryPanel], rounds: [(question: String, answer: String)] = [],
                cells: [String: CellValue] = [:], scores: [String: Double] = [:], problems: [String] = []) {
        self.id = id
        self.kind = kind
        self.panels = panels
        self.rounds = rounds
        self.cells = cells
        self.scores = scores
        self.problems = problems
    }
}

/// The run report: one cell per step, notebook-style.
public struct RunReport: Sendable {
    public var startedAt: String
    public var seconds: Double
    public var status: String             // "ok", "failed", "interrupted"
    public var steps: [StepReport]
    /// Run-level charts, e.g. "CLIP similarity vs context length", drawn after the step cells.
    public var charts: [ChartSpec]
    /// The steps and what each reads, drawn at the top of the report.
    public var graph: StepGraphSpec?
    public init(startedAt: String, seconds: Double, status: String, steps: [StepReport], charts: [ChartSpec] = [],
                graph: StepGraphSpec? = nil) {
        self.startedAt = startedAt
        self.seconds = seconds
        self.status = status
        self.steps = steps
        self.charts = charts
        self.graph = graph
    }
}

/// A line or bar chart as data: one value per x label in each series (NaN leaves a gap).
public struct ChartSpec: Sendable {
    public enum Kind: String, Sendable {
        case line, bar
    }
    public var title: String
    public var xLabels: [String]
    public var series: [(name: String, values: [Double])]
    public var yLabel: String
    public var kind: Kind
    public init(title: String, xLabels: [String], series: [(name: String, values: [Double])], yLabel: String,
                kind: Kind = .line) {
        self.title = title
        self.xLabels = xLabels
        self.series = series
        self.yLabel = yLabel
        self.kind = kind
    }
}

public struct StepReport: Sendable {
    public var id: String
    public var kind: String
    public var params: [(name: String, value: String)]
    public var seconds: Double
    public var ran: Int
    public var cached: Int
    public var failed: Int
    /// Errors of failed items as (item id, message).
    public var errors: [(item: String, message: String)]
    /// A few outputs to show inline.
    public var samples: [(item: String, value: CellValue)]
    /// Score distributions to chart: name → values.
    public var scoreSeries: [(name: String, values: [Double])]

    public init(id: String, kind: String, params: [(name: String, value: String)], seconds: Double,
                ran: Int, cached: Int, failed: Int, errors: [(item: String, message: String)] = [],
                samples: [(item: String, value: CellValue)] = [], scoreSeries: [(name: String, values: [Double])] = []) {
        self.id = id
        self.kind = kind
        self.params = params
        self.seconds = seconds
        self.ran = ran
        self.cached = cached
        self.failed = failed
        self.errors = errors
        self.samples = samples
        self.scoreSeries = scoreSeries
    }
}
