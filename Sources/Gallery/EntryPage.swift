import Foundation
import Plot

/// One story or dialogue: panels interleaved as text and pictures, one column per image source,
/// entry-level outputs, scores, dialogue rounds and problems.
struct EntryPage {
    let document: GalleryDocument
    let entry: GalleryEntry
    /// Page names (without `.html`) of the previous and next entries in document order.
    let previous: String?
    let next: String?
    let cells: CellView

    func render() throws -> String {
        var body: [BodyNode] = [pager(), header()]
        let problems = entry.problems + entry.failures(in: document)
        if !problems.isEmpty {
            body.append(.el("section", [("class", "error-box"), ("id", "problems")], [
                .el("h2", text: problems.count == 1 ? "1 problem" : "\(problems.count) problems"),
                .el("ul", [], problems.map { .el("li", [], [.el("pre", text: $0)]) }),
            ]))
        }
        // Generated continuations read on from the panels they were given: each sits right after the
        // last panel its step read (or after all panels when that is not known).
        let sequenceIds = document.orderedColumnIds(entry.cells.keys).filter {
            if case .sequence? = entry.cells[$0] { return true }
            return false
        }
        func continuation(_ id: String) throws -> BodyNode? {
            guard case let .sequence(pieces, afterPanel)? = entry.cells[id] else { return nil }
            let read = afterPanel.map { $0 == 1 ? "after panel 1" : "after panels 1–\($0)" } ?? "after the context"
            return .el("article", [("class", "continuation"), ("id", "continuation-\(SafeName.slug(id))")], [
                .el("h3", text: "\(document.label(ofColumn: id)): the story continued \(read)"),
                try cells.sequence(pieces, size: "panel"),
            ])
        }
        func placed(after panel: Int?) -> [String] {
            sequenceIds.filter { id in
                guard case let .sequence(_, afterPanel)? = entry.cells[id] else { return false }
                let at = afterPanel.flatMap { entry.panels.map(\.index).contains($0) ? $0 : nil }
                return at == panel
            }
        }
        if !entry.panels.isEmpty {
            var rows: [BodyNode] = [.el("h2", text: entry.kind == "dialogue" ? "Image" : "Panels")]
            for panel in entry.panels {
                rows.append(try panelRow(panel))
                rows += try placed(after: panel.index).compactMap(continuation)
            }
            body.append(.el("section", [("class", "panels")], rows))
        }
        let trailing = try placed(after: nil).compactMap(continuation)
        if !trailing.isEmpty {
            body.append(.el("section", [("class", "continuations")], [.el("h2", text: "Continued")] + trailing))
        }
        if !entry.rounds.isEmpty {
            body.append(.el("section", [("class", "rounds")], [
                .el("h2", text: "Dialogue"),
                .el("ol", [("class", "dialogue")], entry.rounds.enumerated().map { number, round in
                    .el("li", [], [
                        .el("span", [("class", "round-no")], text: String(number + 1)),
                        .el("div", [("class", "bubble question")], [.el("b", text: "Q"), .txt(" " + round.question)]),
                        .el("div", [("class", "bubble answer")], [.el("b", text: "A"), .txt(" " + round.answer)]),
                    ])
                }),
            ]))
        }
        let outputIds = document.orderedColumnIds(entry.cells.keys).filter { !sequenceIds.contains($0) }
        if !outputIds.isEmpty {
            body.append(.el("section", [("class", "outputs")], [
                .el("h2", text: "Outputs"),
                .el("div", [("class", "output-grid")], try outputIds.compactMap { id in
                    guard let value = entry.cells[id] else { return nil }
                    return try cells.labelled(document.label(ofColumn: id), value, size: "large")
                }),
            ]))
        }
        body.append(pager())
        return PageShell.render(title: "\(entry.id) · \(document.title)", location: .entries,
                                document: document, current: "entry", body: body)
    }

    private func header() -> BodyNode {
        var children: [BodyNode] = [
            .el("div", [("class", "title-row")], [
                .el("h1", text: entry.id),
                .el("span", [("class", "kind kind-\(entry.kind == "dialogue" ? "dialogue" : "story")")],
                    text: entry.kind),
            ]),
        ]
        if !entry.scores.isEmpty {
            children.append(.el("div", [("class", "badges")], entry.scores.sorted { $0.key < $1.key }.map {
                cells.badge(name: $0.key, value: $0.value)
            }))
        }
        return .el("header", [("class", "entry-header")], children)
    }

    private func pager() -> BodyNode {
        func link(_ name: String?, _ text: String, _ rel: String) -> BodyNode {
            guard let name else { return .el("span", [("class", "disabled")], text: text) }
            return .el("a", [("href", name + ".html"), ("rel", rel)], text: text)
        }
        return .el("nav", [("class", "pager")], [
            link(previous, "← previous", "prev"),
            .el("a", [("href", "../index.html")], text: "index"),
            .el("a", [("href", "../report.html")], text: "report"),
            link(next, "next →", "next"),
        ])
    }

    /// A panel: its number and text, then ground truth and every column with a cell for it.
    private func panelRow(_ panel: GalleryPanel) throws -> BodyNode {
        var figures: [BodyNode] = [
            .el("figure", [("class", "cell ground-truth")], [
                .el("figcaption", [("class", "cell-label")], text: "ground truth"),
                try cells.image(panel.groundTruth, alt: panel.text, size: "panel"),
            ]),
        ]
        for id in document.orderedColumnIds(panel.cells.keys) {
            guard let value = panel.cells[id] else { continue }
            figures.append(try cells.labelled(document.label(ofColumn: id), value, size: "panel"))
        }
        return .el("article", [("class", "panel-row"), ("id", "panel-\(panel.index)")], [
            .el("div", [("class", "panel-text")], [
                .el("span", [("class", "panel-no")], text: String(panel.index)),
                .el("p", text: panel.text),
            ]),
            .el("div", [("class", "panel-cells")], figures),
        ])
    }
}
