import Foundation
import Plot

/// index.html: every entry as a card with thumbnails and scores, a text filter and a score sort.
struct IndexPage {
    let document: GalleryDocument
    /// Page name of each entry, in document order.
    let pageNames: [String]
    let cells: CellView

    /// Score names over all entries, sorted; each becomes a sort option.
    var scoreNames: [String] {
        Set(document.entries.flatMap(\.scores.keys)).sorted()
    }

    /// Columns that show an image for some entry (entry cell or last-panel cell).
    var imageColumns: [GalleryColumn] {
        let ids = document.columns.map(\.id).filter { id in
            document.entries.contains { thumbnailValue($0, column: id) != nil }
        }
        return ids.map { id in document.columns.first { $0.id == id } ?? GalleryColumn(id: id, label: id) }
    }

    /// The value a card shows for a column: the entry's own cell when it is an image (or a failure),
    /// else the last panel's cell when that is one.
    func thumbnailValue(_ entry: GalleryEntry, column: String) -> CellValue? {
        for candidate in [entry.cells[column], entry.panels.last?.cells[column]] {
            guard let value = candidate else { continue }
            if value.thumbnail != nil || value.failureMessage != nil { return value }
        }
        return nil
    }

    func render() throws -> String {
        let stories = document.entries.filter { $0.kind != "dialogue" }.count
        let dialogues = document.entries.count - stories
        let failing = document.entries.filter { !$0.failures(in: document).isEmpty }.count
        let columns = imageColumns
        var summary: [BodyNode] = [
            .el("span", text: "\(stories) \(stories == 1 ? "story" : "stories")"),
            .el("span", text: "\(dialogues) \(dialogues == 1 ? "dialogue" : "dialogues")"),
        ]
        if failing > 0 {
            summary.append(.el("span", [("class", "badge low")], text: "\(failing) with failures"))
        }
        summary.append(.el("a", [("href", "report.html")], text: "run report →"))
        let sortOptions: [BodyNode] = [.el("option", [("value", "")], text: "document order"),
                                       .el("option", [("value", "id")], text: "id")]
            + scoreNames.map { .el("option", [("value", "score:" + $0)], text: $0) }
        let toolbar: BodyNode = .el("div", [("class", "toolbar")], [
            .void("input", [("type", "search"), ("id", "filter"), ("placeholder", "Filter by id or text…"),
                            ("aria-label", "Filter entries")]),
            .el("label", [("for", "sort")], text: "Sort by"),
            .el("select", [("id", "sort")], sortOptions),
            .el("button", [("type", "button"), ("id", "direction"), ("data-descending", "true")],
                text: "↓ high first"),
            .el("span", [("id", "count"), ("class", "muted")], text: "\(document.entries.count) shown"),
        ])
        let cards = try document.entries.enumerated().map { index, entry in
            try card(entry, page: pageNames[index], position: index, columns: columns)
        }
        // The workflow's own charts (e.g. similarity against context length) lead the page.
        let charts: [BodyNode] = document.report.charts.isEmpty ? []
            : [.el("div", [("class", "chart-grid")], document.report.charts.map { Chart($0).figure() })]
        let about: [BodyNode] = document.about.map { [.el("p", [("class", "about")], text: $0)] } ?? []
        let body: [BodyNode] = [
            .el("h1", text: document.title),
        ] + about + [
            .el("p", [("class", "summary")], summary),
        ] + charts + [
            toolbar,
            .el("div", [("id", "entries"), ("class", "entry-list")], cards),
            .el("p", [("id", "no-match"), ("class", "muted"), ("hidden", "")], text: "No entry matches the filter."),
        ]
        return PageShell.render(title: document.title, location: .root, document: document, current: "index",
                                body: body)
    }

    private func card(_ entry: GalleryEntry, page: String, position: Int, columns: [GalleryColumn]) throws
        -> BodyNode {
        let failures = entry.failures(in: document)
        var classes = "entry-card"
        if !failures.isEmpty { classes += " failed" }
        var flags: [BodyNode] = [
            .el("span", [("class", "kind kind-\(entry.kind == "dialogue" ? "dialogue" : "story")")], text: entry.kind),
        ]
        if !failures.isEmpty {
            flags.append(.el("span", [("class", "badge low"), ("title", failures.joined(separator: "\n"))],
                             text: "✕ \(failures.count) failed"))
        }
        if !entry.problems.isEmpty {
            flags.append(.el("span", [("class", "badge mid")],
                             text: "⚠ \(entry.problems.count) \(entry.problems.count == 1 ? "warning" : "warnings")"))
        }
        let excerpt = entry.rounds.last.map { "Q: \($0.question) A: \($0.answer)" } ?? entry.panels.last?.text ?? ""
        var thumbs: [BodyNode] = [
            .el("figure", [("class", "thumb-cell")], [
                try cells.image(entry.panels.last?.groundTruth, alt: entry.panels.last?.text ?? ""),
                .el("figcaption", text: "ground truth"),
            ]),
        ]
        for column in columns {
            let content: BodyNode
            switch thumbnailValue(entry, column: column.id) {
            case .some(let value) where value.failureMessage != nil:
                content = .el("div", [("class", "missing thumb failed"), ("title", value.failureMessage ?? "")],
                              text: "failed")
            case .some(let value):
                content = try cells.image(value.thumbnail, alt: column.label)
            case .none:
                content = .el("div", [("class", "missing thumb")], text: "—")
            }
            thumbs.append(.el("figure", [("class", "thumb-cell")], [content, .el("figcaption", text: column.label)]))
        }
        var main: [BodyNode] = [
            .el("div", [("class", "card-head")], [
                .el("a", [("class", "entry-link"), ("href", "entries/\(page).html")], text: entry.id),
            ] + flags),
            .el("p", [("class", "card-text")], text: excerpt),
        ]
        if !entry.scores.isEmpty {
            main.append(.el("div", [("class", "badges")], entry.scores.sorted { $0.key < $1.key }.map {
                cells.badge(name: $0.key, value: $0.value)
            }))
        }
        return .el("article", [("class", classes), ("data-id", entry.id), ("data-position", String(position)),
                               ("data-search", entry.searchText), ("data-scores", Self.scoresJSON(entry.scores))], [
            .el("div", [("class", "card-main")], main),
            .el("div", [("class", "thumbs")], thumbs),
        ])
    }

    /// Scores as a JSON object for the sort script; non-finite values become null (JSON has no NaN).
    static func scoresJSON(_ scores: [String: Double]) -> String {
        let object = scores.mapValues { $0.isFinite ? $0 : nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(object), let text = String(data: data, encoding: .utf8) else {
            return "{}"
        }
        return text
    }
}
