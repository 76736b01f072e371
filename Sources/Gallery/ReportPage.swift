import Foundation
import Plot

/// report.html: the run as a notebook, one cell per step, with score histograms and run charts.
struct ReportPage {
    let document: GalleryDocument
    let cells: CellView

    func render() throws -> String {
        let report = document.report
        let statusClass = report.status == "ok" ? "badge high" : report.status == "failed" ? "badge low" : "badge mid"
        let ran = report.steps.reduce(0) { $0 + $1.ran }
        let cached = report.steps.reduce(0) { $0 + $1.cached }
        let failed = report.steps.reduce(0) { $0 + $1.failed }
        var body: [BodyNode] = [
            .el("div", [("class", "title-row")], [
                .el("h1", text: "Run report"),
                .el("span", [("class", statusClass), ("id", "run-status")], text: report.status),
            ]),
            .el("dl", [("class", "facts")], [
                .el("dt", text: "workflow"), .el("dd", text: document.workflowName),
                .el("dt", text: "started"), .el("dd", text: report.startedAt),
                .el("dt", text: "duration"), .el("dd", text: GalleryFormat.duration(report.seconds)),
                .el("dt", text: "items"), .el("dd", [], counts(ran: ran, cached: cached, failed: failed)),
            ]),
        ]
        if !report.steps.isEmpty { body.append(summaryTable(report.steps)) }
        if let graph = report.graph, !graph.nodes.isEmpty {
            body.append(.el("section", [("class", "notebook-cell"), ("id", "step-graph")], [
                .el("div", [("class", "cell-prompt")], text: "graph"),
                .el("div", [("class", "cell-body")], [.el("h2", text: "Step graph"), StepGraphFigure(spec: graph).figure()]),
            ]))
        }
        body += try report.steps.enumerated().map { try stepCell($1, number: $0 + 1) }
        if !report.charts.isEmpty {
            body.append(.el("section", [("class", "notebook-cell"), ("id", "charts")], [
                .el("div", [("class", "cell-prompt")], text: "charts"),
                .el("div", [("class", "cell-body")], [
                    .el("h2", text: "Charts"),
                    .el("div", [("class", "chart-grid")], report.charts.map { Chart($0).figure() }),
                ]),
            ]))
        }
        return PageShell.render(title: "Run report · \(document.title)", location: .root, document: document,
                                current: "report", body: body)
    }

    private func counts(ran: Int, cached: Int, failed: Int) -> [BodyNode] {
        [
            .el("span", [("class", "pill ran")], text: "\(ran) ran"),
            .el("span", [("class", "pill cached")], text: "\(cached) cached"),
            .el("span", [("class", failed > 0 ? "pill failed" : "pill")], text: "\(failed) failed"),
        ]
    }

    private func summaryTable(_ steps: [StepReport]) -> BodyNode {
        let head: BodyNode = .el("thead", [], [.el("tr", [], [
            .el("th", text: "step"), .el("th", text: "kind"),
        ] + ["time", "ran", "cached", "failed"].map { .el("th", [("class", "num")], text: $0) })])
        let rows: [BodyNode] = steps.enumerated().map { index, step in
            .el("tr", [("class", step.failed > 0 ? "has-failures" : "")], [
                .el("td", [], [.el("a", [("href", "#step-\(index + 1)")], text: step.id)]),
                .el("td", text: step.kind),
                .el("td", [("class", "num")], text: GalleryFormat.duration(step.seconds)),
                .el("td", [("class", "num")], text: String(step.ran)),
                .el("td", [("class", "num")], text: String(step.cached)),
                .el("td", [("class", "num")], text: String(step.failed)),
            ])
        }
        return .el("table", [("class", "summary-table")], [head, .el("tbody", [], rows)])
    }

    private func stepCell(_ step: StepReport, number: Int) throws -> BodyNode {
        var body: [BodyNode] = [
            .el("div", [("class", "step-head")], [
                .el("h2", text: step.id),
                .el("span", [("class", "kind")], text: step.kind),
                .el("span", [("class", "muted")], text: GalleryFormat.duration(step.seconds)),
            ] + counts(ran: step.ran, cached: step.cached, failed: step.failed)),
        ]
        if !step.params.isEmpty {
            body.append(.el("table", [("class", "params")], [
                .el("tbody", [], step.params.map { param in
                    .el("tr", [], [.el("th", text: param.name), .el("td", [], [.el("code", text: param.value)])])
                }),
            ]))
        }
        if !step.samples.isEmpty {
            body.append(.el("h3", text: "Samples"))
            body.append(.el("div", [("class", "output-grid")], try step.samples.map { sample in
                try cells.labelled(sample.item, sample.value)
            }))
        }
        if !step.scoreSeries.isEmpty {
            body.append(.el("div", [("class", "chart-grid")], step.scoreSeries.map { series in
                let histogram = Histogram(values: series.values)
                var children: [BodyNode] = [
                    Chart.histogram(title: "\(series.name) — \(series.values.count) values", values: series.values)
                        .figure(),
                ]
                if histogram.nonFinite > 0 {
                    children.append(.el("p", [("class", "muted")],
                                        text: "\(histogram.nonFinite) non-finite values not shown"))
                }
                return .el("div", [("class", "histogram"), ("data-series", series.name)], children)
            }))
        }
        if !step.errors.isEmpty {
            body.append(.el("div", [("class", "error-box")], [
                .el("h3", text: step.errors.count == 1 ? "1 failed item" : "\(step.errors.count) failed items"),
                .el("ul", [], step.errors.map { error in
                    .el("li", [], [.el("code", text: error.item), .el("pre", text: error.message)])
                }),
            ]))
        }
        return .el("section", [("class", step.failed > 0 ? "notebook-cell failed" : "notebook-cell"),
                               ("id", "step-\(number)"), ("data-step", step.id)], [
            .el("div", [("class", "cell-prompt")], text: "[\(number)]"),
            .el("div", [("class", "cell-body")], body),
        ])
    }
}
