import Foundation
import Plot

/// Renders cell values, images and score badges for one page; media is placed on first use.
struct CellView {
    let media: MediaCatalog
    let location: PageLocation

    /// A thumbnail or full image linking to its file, or a visible "missing image" box.
    func image(_ file: MediaFile?, alt: String, size: String = "thumb") throws -> BodyNode {
        guard let file else {
            return .el("div", [("class", "missing \(size)")], text: size == "mini" ? "—" : "no image")
        }
        guard let relative = try media.place(file) else {
            let name = URL(fileURLWithPath: file.path).lastPathComponent
            return .el("div", [("class", "missing \(size)"), ("title", file.path)], [
                .el("span", text: "missing image"),
                .el("small", text: name),
            ])
        }
        let src = location.toRoot + relative
        return .el("a", [("class", "img-link"), ("href", src)], [
            .void("img", [("class", size), ("src", src), ("alt", alt), ("loading", "lazy")]),
        ])
    }

    /// A score as a coloured badge: "name 0.612".
    func badge(name: String, value: Double) -> BodyNode {
        .el("span", [("class", GalleryFormat.badgeClass(value)), ("title", "\(name) = \(value)")], [
            .el("span", [("class", "badge-name")], text: name),
            .el("span", [("class", "badge-value")], text: GalleryFormat.score(value)),
        ])
    }

    /// One labelled cell as a card: the column label on top, the value below.
    func labelled(_ label: String, _ value: CellValue, size: String = "thumb") throws -> BodyNode {
        let failed: Bool
        if case .failed = value { failed = true } else { failed = false }
        return .el("figure", [("class", failed ? "cell failed" : "cell")], [
            .el("figcaption", [("class", "cell-label")], text: label),
            try content(value, size: size),
        ])
    }

    /// The value itself, without a label.
    func content(_ value: CellValue, size: String = "thumb") throws -> BodyNode {
        switch value {
        case .text(let text):
            return .el("p", [("class", "cell-text")], text: text)
        case .number(let number):
            return .el("div", [("class", "cell-number")], [badge(name: "", value: number)])
        case .image(let file, let caption):
            var children = [try image(file, alt: caption ?? "", size: size)]
            if let caption, !caption.isEmpty {
                children.append(.el("p", [("class", "caption")], text: caption))
            }
            return .el("div", [("class", "cell-image")], children)
        case .ranked(let candidates):
            return .el("ol", [("class", "ranked")], try candidates.map { candidate in
                .el("li", [], [
                    try image(candidate.image, alt: candidate.id, size: "mini"),
                    .el("span", [("class", "ranked-id")], text: candidate.id),
                    badge(name: "", value: candidate.score),
                ])
            })
        case .decision(let choice, let probability, let detail):
            let clamped = probability.isFinite ? min(max(probability, 0), 1) : 0
            var children: [BodyNode] = [
                .el("div", [("class", "decision-head")], [
                    .el("span", [("class", "choice")], text: choice),
                    .el("span", [("class", "probability")], text: "p = " + GalleryFormat.percent(probability)),
                ]),
                .el("div", [("class", "meter")], [
                    .el("span", [("style", "width: \(GalleryFormat.fixed(clamped * 100, decimals: 1))%")]),
                ]),
            ]
            if let detail, !detail.isEmpty {
                children.append(.el("p", [("class", "caption")], text: detail))
            }
            return .el("div", [("class", "decision")], children)
        case .sequence(let pieces, _):
            return try sequence(pieces, size: size)
        case .failed(let error):
            return .el("div", [("class", "cell-error")], [
                .el("strong", text: "failed"),
                .el("pre", text: error),
            ])
        }
    }
}

extension CellView {
    /// A generated sequence read in order: text as paragraphs, each image with its decision, scores
    /// and the candidates it was chosen from.
    func sequence(_ pieces: [SequencePiece], size: String) throws -> BodyNode {
        .el("div", [("class", "sequence")], try pieces.map { piece in
            switch piece {
            case .text(let text):
                return .el("p", [("class", "seq-text")], text: text.isEmpty ? "…" : text)
            case let .image(file, decision, probability, scores, alternatives):
                var head: [BodyNode] = [.el("span", [("class", "choice")], text: decision)]
                if let probability { head.append(.el("span", [("class", "probability")], text: "p = " + GalleryFormat.percent(probability))) }
                var children: [BodyNode] = [try image(file, alt: decision, size: size), .el("div", [("class", "decision-head")], head)]
                if !scores.isEmpty {
                    children.append(.el("div", [("class", "badges")], scores.map { badge(name: $0.name, value: $0.value) }))
                }
                if !alternatives.isEmpty {
                    children.append(.el("ol", [("class", "ranked")], try alternatives.map { alt in
                        var item: [BodyNode] = [try image(alt.image, alt: alt.label, size: "mini"),
                                                .el("span", [("class", "ranked-id")], text: alt.label)]
                        if let score = alt.score { item.append(badge(name: "", value: score)) }
                        return .el("li", [], item)
                    }))
                }
                return .el("figure", [("class", "seq-image")], children)
            }
        })
    }
}

extension CellValue {
    /// The error message when this cell is a failure.
    var failureMessage: String? {
        if case .failed(let error) = self { return error }
        return nil
    }

    /// The image shown as a thumbnail for this cell, if it has one.
    var thumbnail: MediaFile? {
        switch self {
        case .image(let file, _): return file
        case .ranked(let candidates): return candidates.first?.image
        case .sequence(let pieces, _):
            for case let .image(file?, _, _, _, _) in pieces { return file }
            return nil
        default: return nil
        }
    }
}

extension GalleryDocument {
    /// Cell column ids in display order: the document's columns first, then any id that only
    /// appears in cells (so no output is silently dropped), sorted.
    func orderedColumnIds(_ present: some Sequence<String>) -> [String] {
        let present = Set(present)
        let known = columns.map(\.id).filter { present.contains($0) }
        let extra = present.subtracting(columns.map(\.id)).sorted()
        return known + extra
    }

    /// The label of a column id (the id itself when the column is not declared).
    func label(ofColumn id: String) -> String {
        columns.first { $0.id == id }?.label ?? id
    }
}

extension GalleryEntry {
    /// Failed cells of the entry and its panels as readable lines.
    func failures(in document: GalleryDocument) -> [String] {
        var lines: [String] = []
        for id in document.orderedColumnIds(cells.keys) {
            if let message = cells[id]?.failureMessage {
                lines.append("\(document.label(ofColumn: id)): \(message)")
            }
        }
        for panel in panels {
            for id in document.orderedColumnIds(panel.cells.keys) {
                if let message = panel.cells[id]?.failureMessage {
                    lines.append("panel \(panel.index), \(document.label(ofColumn: id)): \(message)")
                }
            }
        }
        return lines
    }

    /// All user text of the entry, lowercased, for the index filter.
    var searchText: String {
        ([id] + panels.map(\.text) + rounds.flatMap { [$0.question, $0.answer] })
            .joined(separator: " ").lowercased()
    }
}
