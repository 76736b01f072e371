import Foundation
import Gallery
import Store

/// `storyloom compare`: an A/B comparison of two variants — the same workflow with other params (`--a`/`--b`
/// overrides), two workflow files, or two score steps of one workflow — on one store, so only what is not
/// cached is computed. Per entry it pairs A's and B's score (a panel score is the entry's mean) and shows
/// what each variant produced side by side; the summary is the paired mean difference with its 95%
/// interval and wins / ties / losses of B over A.
public struct Comparison {
    /// One side: a workflow file with overrides, and the score it is judged by (`step.output`).
    public struct Variant: Sendable {
        public var file: URL
        public var overrides: [String]
        public var score: String
        public var label: String

        public init(file: URL, overrides: [String] = [], score: String, label: String) {
            self.file = file
            self.overrides = overrides
            self.score = score
            self.label = label
        }
    }

    /// The paired statistics over entries that have both scores.
    public struct Summary: Sendable, Equatable {
        public var n: Int
        public var meanA: Double, meanB: Double
        /// Mean of B − A and its normal-approximation 95% interval (paired).
        public var meanDelta: Double, ci95: Double
        public var wins: Int, ties: Int, losses: Int

        public init(pairs: [(a: Double, b: Double)], tie: Double) {
            let finite = pairs.filter { $0.a.isFinite && $0.b.isFinite }
            n = finite.count
            let deltas = finite.map { $0.b - $0.a }
            meanA = ScoreSummary(name: "A", values: finite.map(\.a)).mean
            meanB = ScoreSummary(name: "B", values: finite.map(\.b)).mean
            // The paired interval is the one-sample interval of the differences.
            let d = ScoreSummary(name: "B − A", values: deltas)
            meanDelta = d.mean
            ci95 = d.ci95
            wins = deltas.filter { $0 > tie }.count
            losses = deltas.filter { $0 < -tie }.count
            ties = n - wins - losses
        }

        public var text: String {
            String(format: "B − A: mean %+.4f ± %.4f (95%%, paired, n=%d); A %.4f, B %.4f; B wins %d, ties %d, loses %d",
                   meanDelta, ci95, n, meanA, meanB, wins, ties, losses)
        }
    }

    public var a: Variant
    public var b: Variant
    /// The store both variants use (`--store`, `--media`; default: what the workflow file names).
    public var store: StoreOptions
    public var registry: StepRegistry
    /// Differences within this are ties.
    public var tie: Double
    /// Outputs to show side by side (`step.output`); empty: the step outputs each variant's score reads.
    public var show: [String]

    public init(a: Variant, b: Variant, store: StoreOptions, registry: StepRegistry, tie: Double = 1e-6, show: [String] = []) {
        self.a = a
        self.b = b
        self.store = store
        self.registry = registry
        self.tie = tie
        self.show = show
    }

    /// Both variants against a SQLite store folder (or the store the workflow file names).
    public init(a: Variant, b: Variant, storeRoot: URL?, registry: StepRegistry, tie: Double = 1e-6, show: [String] = []) {
        self.init(a: a, b: b, store: StoreOptions(store: storeRoot?.path), registry: registry, tie: tie, show: show)
    }

    /// Runs what is stale for both variants, then builds the comparison gallery document.
    /// - Returns: the comparison document, its summary, and the default gallery folder (`<workflow>-compare`).
    public func run(progress: ProgressReporter = ProgressReporter(quiet: true)) async throws -> (GalleryDocument, Summary, URL) {
        let sessionA = try session(a)
        let sessionB = try session(b)
        for s in sameRun ? [sessionB] : [sessionA, sessionB] {
            _ = try await s.run(.init(gallery: false, progress: progress))
        }
        let planA = try sessionA.makePlan(explainStale: false), planB = try sessionB.makePlan(explainStale: false)
        for (variant, plan) in [(a, planA), (b, planB)] { try Self.check(variant.score, in: plan, label: variant.label) }
        let showA = try columns(for: a, plan: planA), showB = try columns(for: b, plan: planB)
        var specA = planA.spec, specB = planB.spec
        specA.gallery.columns = (showA + [a.score]).map { Self.ref($0) }
        specB.gallery.columns = (showB + [b.score]).map { Self.ref($0) }
        var pa = planA, pb = planB
        pa.spec = specA
        pb.spec = specB
        let docA = try GalleryBuilder.document(plan: pa, store: sessionA.store, summary: nil)
        let docB = try GalleryBuilder.document(plan: pb, store: sessionB.store, summary: nil)
        var (document, summary) = merge(docA, docB, showA: showA, showB: showB)
        // Named for the workflow itself, not for a variant's item states (`name@overrides`).
        let base = try WorkflowSession(file: a.file, options: store, registry: registry)
        document.title = "Compare: " + (base.spec.gallery.title ?? base.spec.name)
        document.workflowName = base.spec.name
        let folder = base.galleryFolder
        return (document, summary, folder.deletingLastPathComponent().appendingPathComponent(folder.lastPathComponent + "-compare"))
    }

    /// Both variants are one run when only the score step differs (two steps of one workflow).
    var sameRun: Bool { a.file.standardizedFileURL == b.file.standardizedFileURL && a.overrides == b.overrides }

    func session(_ v: Variant) throws -> WorkflowSession {
        var s = try WorkflowSession(file: v.file, overrides: v.overrides, options: store, registry: registry)
        // Each side keeps its own item states, so a comparison never disturbs what the workflow last ran.
        if !v.overrides.isEmpty { s.spec.name += "@" + v.label }
        return s
    }

    static func ref(_ text: String) -> InputRef { SpecParser.inputRef(text, location: nil) }

    static func check(_ column: String, in plan: Plan, label: String) throws {
        let parts = column.split(separator: ".", maxSplits: 1).map(String.init)
        guard let step = plan.step(parts[0]) else {
            throw StepError("\(label): no step \"\(parts[0])\"\(Suggest.hint(parts[0], plan.steps.map(\.spec.id)))")
        }
        let output = parts.count == 2 ? parts[1] : step.kind.outputs.first ?? ""
        guard step.kind.outputs.contains(output) else {
            throw StepError("\(label): step \"\(step.spec.id)\" has no output \"\(output)\"; its outputs: \(step.kind.outputs.joined(separator: ", "))")
        }
    }

    /// What to show for a variant: `show`, or the step outputs its score step reads.
    func columns(for v: Variant, plan: Plan) throws -> [String] {
        if !show.isEmpty {
            for c in show { try Self.check(c, in: plan, label: "--show") }
            return show
        }
        let scoreStep = String(v.score.split(separator: ".").first ?? "")
        guard let step = plan.step(scoreStep) else { return [] }
        return step.spec.inputs.keys.sorted().compactMap { name in
            guard case .step(let id, let output, _) = step.spec.inputs[name]!.source, let up = plan.step(id) else { return nil }
            return "\(id).\(output ?? up.kind.outputs.first ?? "")"
        }
    }

    func merge(_ docA: GalleryDocument, _ docB: GalleryDocument, showA: [String], showB: [String]) -> (GalleryDocument, Summary) {
        let scoreA = "A · \(a.score)", scoreB = "B · \(b.score)", delta = "Δ (B − A)"
        let byID = Dictionary(docB.entries.map { ($0.id, $0) }, uniquingKeysWith: { x, _ in x })
        var pairs: [(a: Double, b: Double)] = []
        var deltas: [Double] = []
        var entries: [GalleryEntry] = []
        func prefixed(_ cells: [String: CellValue], _ keep: [String], _ label: String) -> [String: CellValue] {
            var out: [String: CellValue] = [:]
            for k in keep { if let v = cells[k] { out["\(label) · \(k)"] = v } }
            return out
        }
        for ea in docA.entries {
            guard let eb = byID[ea.id] else { continue }
            var e = ea
            e.cells = prefixed(ea.cells, showA + [a.score], "A").merging(prefixed(eb.cells, showB + [b.score], "B")) { x, _ in x }
            for p in e.panels.indices {
                let pb = eb.panels.indices.contains(p) ? eb.panels[p].cells : [:]
                e.panels[p].cells = prefixed(ea.panels[p].cells, showA + [a.score], "A").merging(prefixed(pb, showB + [b.score], "B")) { x, _ in x }
            }
            e.problems = ea.problems.map { "A: \($0)" } + eb.problems.map { "B: \($0)" }
            e.scores = [:]
            if let x = ea.scores[a.score] { e.scores[scoreA] = x }
            if let y = eb.scores[b.score] { e.scores[scoreB] = y }
            if let x = ea.scores[a.score], let y = eb.scores[b.score] {
                pairs.append((x, y))
                e.scores[delta] = y - x
                if (y - x).isFinite { deltas.append(y - x) }
            }
            entries.append(e)
        }
        let summary = Summary(pairs: pairs, tie: tie)
        let columns = (showA + [a.score]).map { GalleryColumn(id: "A · \($0)", label: "A · \($0)") }
            + (showB + [b.score]).map { GalleryColumn(id: "B · \($0)", label: "B · \($0)") }
        var report = docB.report
        report.steps = docA.report.steps.map { var s = $0; s.id = "A · " + s.id; return s }
            + docB.report.steps.map { var s = $0; s.id = "B · " + s.id; return s }
        report.graph = nil
        report.charts = [
            ChartSpec(title: "Mean score", xLabels: ["A", "B"], series: [(name: "mean", values: [summary.meanA, summary.meanB])],
                      yLabel: a.score == b.score ? a.score : "score", kind: .bar),
            Chart.histogram(title: "B − A per entry (n=\(summary.n))", values: deltas).spec,
        ]
        let about = "A: \(a.label)  ·  B: \(b.label)\n\(summary.text)"
        let document = GalleryDocument(title: "Compare: \(docA.title)", workflowName: docA.workflowName,
                                       generatedAt: docB.generatedAt, columns: columns, entries: entries, report: report,
                                       about: about)
        return (document, summary)
    }
}
