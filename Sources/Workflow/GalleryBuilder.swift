import Foundation
import Gallery
import Stories
import Store

/// Fills a ``GalleryDocument`` from a plan and the store: ground truth beside every image-producing
/// column, scores, decisions, retrievals and failures.
public enum GalleryBuilder {
    public static func document(plan: Plan, store: any ResultStore, summary: RunSummary?) throws -> GalleryDocument {
        let reader = ResultReader(store: store)
        let stepsByID = Dictionary(plan.steps.map { ($0.spec.id, $0) }, uniquingKeysWith: { a, _ in a })

        // Which (step, output) pairs to show.
        var wanted: [(step: StepPlan, output: String)] = []
        if plan.spec.gallery.columns.isEmpty {
            for step in plan.steps { for output in step.kind.outputs { wanted.append((step, output)) } }
        } else {
            for ref in plan.spec.gallery.columns {
                switch ref.source {
                case .step(let id, let output, _):
                    if let s = stepsByID[id] { wanted.append((s, output ?? s.kind.outputs.first ?? "")) }
                case .column(let id):
                    if let s = stepsByID[id] { wanted.append((s, s.kind.outputs.first ?? "")) }
                }
            }
        }
        var results: [String: DecodedResult] = [:]
        for step in Set(wanted.map(\.step.spec.id)).sorted() {
            guard let s = stepsByID[step] else { continue }
            results.merge(try reader.read(s.items.map(\.fingerprint))) { a, _ in a }
        }
        let states = try store.stateIndex(workflow: plan.spec.name)

        let collection = try plan.collection
        let cellMaker = GalleryCells(collection: collection, media: store.media)

        var shown = Set<String>()
        var entries: [GalleryEntry] = []
        for entry in collection.entries {
            var panels = entry.panels.enumerated().map { p, panel in
                GalleryPanel(index: p + 1, text: panel.text, groundTruth: GalleryCells.groundTruth(panel, root: collection.root))
            }
            var cells: [String: CellValue] = [:]
            var scores: [String: Double] = [:]
            var panelScores: [String: [Double]] = [:]
            var problems = entry.warnings
            for (step, output) in wanted {
                let column = "\(step.spec.id).\(output)"
                let ids: [(String, Int?)] = step.spec.scope == .panel
                    ? entry.panels.indices.map { (ItemID(entry: entry.id, panel: $0).description, $0) }
                    : [(entry.id, nil)]
                for (id, p) in ids {
                    guard let i = step.index[id] else { continue }
                    let fp = step.items[i].fingerprint
                    let cell: CellValue
                    if let r = results[fp], states[step.spec.id]?[id]?.fingerprint == fp || r.ok {
                        if !r.ok {
                            cell = .failed(error: r.error ?? "failed")
                            if !problems.contains(where: { $0.hasPrefix("\(step.spec.id) failed for \(id)") }) {
                                problems.append("\(step.spec.id) failed for \(id): \(r.error ?? "unknown error")")
                            }
                        } else if let v = r.outputs[output], let c = cellMaker.cell(v) {
                            // A sequence continues the story after the panels its step read.
                            if case .sequence(let pieces, nil) = c, let n = step.params["panels"]?.doubleValue, n > 0 {
                                cell = .sequence(pieces, afterPanel: min(Int(n), entry.panels.count))
                            } else {
                                cell = c
                            }
                            if let n = v.number {
                                if p == nil { scores[column] = n } else { panelScores[column, default: []].append(n) }
                            }
                        } else { continue }
                    } else { continue }
                    shown.insert(column)
                    if let p { panels[p].cells[column] = cell } else { cells[column] = cell }
                }
            }
            for (name, values) in panelScores where !values.isEmpty {
                scores[name] = values.reduce(0, +) / Double(values.count)
            }
            entries.append(GalleryEntry(id: entry.id, kind: entry.kind.rawValue, panels: panels,
                                        rounds: entry.rounds.map { ($0.question, $0.answer) },
                                        cells: cells, scores: scores, problems: problems))
        }
        let columns = wanted.map { "\($0.step.spec.id).\($0.output)" }.filter { shown.contains($0) }
        var seen = Set<String>()
        let galleryColumns = columns.filter { seen.insert($0).inserted }.map { GalleryColumn(id: $0, label: $0) }

        let report = try runReport(plan: plan, summary: summary, reader: reader, cells: cellMaker)
        let formatter = ISO8601DateFormatter()
        return GalleryDocument(title: plan.spec.gallery.title ?? plan.spec.name, workflowName: plan.spec.name,
                               generatedAt: formatter.string(from: Date()), columns: galleryColumns,
                               entries: entries, report: report, about: plan.spec.about)
    }

    static func runReport(plan: Plan, summary: RunSummary?, reader: ResultReader, cells: GalleryCells) throws -> RunReport {
        let formatter = ISO8601DateFormatter()
        let stepsByID = Dictionary(plan.steps.map { ($0.spec.id, $0) }, uniquingKeysWith: { a, _ in a })
        var steps: [StepReport] = []
        var allSeries: [String: [Double]] = [:]
        for step in plan.steps {
            let s = summary?.steps.first { $0.id == step.spec.id }
            let params = step.params.keys.sorted().map { ($0, Explainer.show(step.params[$0])) }
            // Score outputs as distributions (every item), other outputs as a few samples.
            let scored = !step.kind.scoreOutputs.isEmpty
            let sampleItems = scored ? step.items : Array(step.items.prefix(8))
            let stepResults = try reader.read(sampleItems.map(\.fingerprint))
            var series: [String: [Double]] = [:]
            var samples: [(item: String, value: CellValue)] = []
            for item in sampleItems {
                guard let r = stepResults[item.fingerprint], r.ok else { continue }
                for name in step.kind.scoreOutputs {
                    if let n = r.outputs[name]?.number, n.isFinite { series["\(step.spec.id).\(name)", default: []].append(n) }
                }
                if samples.count < 4, let v = InputResolver.output(nil, of: r, kind: step.kind),
                   let c = cells.cell(v) {
                    samples.append((item.id, c))
                }
            }
            allSeries.merge(series) { a, _ in a }
            steps.append(StepReport(id: step.spec.id, kind: step.kind.name, params: params, seconds: s?.seconds ?? 0,
                                    ran: s?.ran ?? 0, cached: s?.cached ?? step.items.count, failed: s?.failed ?? 0,
                                    errors: (s?.errors ?? []).map { ($0.item, $0.error) }, samples: samples,
                                    scoreSeries: series.keys.sorted().map { ($0, series[$0]!) }))
        }
        let charts = plan.spec.gallery.charts.map { chart in
            ChartSpec(title: chart.title, xLabels: chart.xLabels, series: chart.series.map { name, columns in
                (name, columns.map { ref -> Double in
                    guard let ref, let (id, output) = ref.stepOutput(steps: stepsByID),
                          let kind = stepsByID[id]?.kind,
                          let values = allSeries["\(id).\(output ?? kind.outputs.first ?? "")"] else { return .nan }
                    return ScoreSummary(name: id, values: values).mean   // the run summary's mean (NaN when empty)
                })
            }, yLabel: chart.yLabel, kind: ChartSpec.Kind(rawValue: chart.kind) ?? .line)
        }
        return RunReport(startedAt: summary.map { formatter.string(from: $0.startedAt) } ?? "not run yet",
                         seconds: summary?.seconds ?? 0, status: summary?.status ?? "planned", steps: steps, charts: charts,
                         graph: stepGraph(plan: plan, steps: steps))
    }

    /// The plan's step graph with each step's run counts (planned counts before any run).
    static func stepGraph(plan: Plan, steps: [StepReport]) -> StepGraphSpec {
        let graph = plan.graph
        let index = Dictionary(graph.nodes.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        let reports = Dictionary(steps.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return StepGraphSpec(
            nodes: graph.nodes.map { n in
                let r = reports[n.id]
                return .init(id: n.id, kind: n.kind, ran: r?.ran ?? 0, cached: r?.cached ?? n.cached, failed: r?.failed ?? 0,
                             layer: n.layer)
            },
            edges: graph.edges.compactMap { e in index[e.from].flatMap { a in index[e.to].map { (a, $0) } } })
    }
}
