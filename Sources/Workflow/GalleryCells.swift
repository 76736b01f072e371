import Foundation
import Gallery
import Stories
import Store

/// Turns stored output values into gallery cells. Entry pages and the run report both go through this,
/// so a retrieved panel id resolves to its picture everywhere (the report once built its cells without
/// the panel lookup and showed empty boxes where the entry pages showed thumbnails).
struct GalleryCells {
    /// Every collection panel's picture by item id (`entry#panel`), for retrieved ids.
    let panels: [String: MediaFile]
    let media: MediaStore

    init(collection: StoryCollection, media: MediaStore) {
        var panels: [String: MediaFile] = [:]
        for entry in collection.entries {
            for (p, panel) in entry.panels.enumerated() {
                if let file = Self.groundTruth(panel, root: collection.root) { panels[ItemID(entry: entry.id, panel: p).description] = file }
            }
        }
        self.panels = panels
        self.media = media
    }

    /// The picture to show for a collection panel.
    static func groundTruth(_ panel: Panel, root: URL) -> MediaFile? {
        // StoryWorld keeps a display-resolution copy; prefer it for viewing.
        if let display = panel.metadata?["display"]?.stringValue, PathSafety.staysInside(relativePath: display) {
            return MediaFile(path: root.appendingPathComponent(display).path)
        }
        guard let image = panel.image else { return nil }
        return MediaFile(path: ColumnFingerprints.url(image, root: root).path)
    }

    /// The cell for one output value; nil for values a gallery does not show (vectors, mixed lists).
    func cell(_ v: Value) -> CellValue? {
        switch v {
        case .text(let s): return .text(s)
        case .number(let n): return .number(n)
        case .image(let ref):
            let path = ref.path ?? media.url(hash: ref.hash, ext: ref.ext).path
            return .image(MediaFile(path: path, hash: ref.hash), caption: nil)
        case .ranked(let candidates):
            return .ranked(candidates.map { RankedImage(id: $0.id, image: panels[$0.id], score: $0.score) })
        case .choice(let c, let p): return .decision(choice: c, probability: p, detail: nil)
        case .vector: return nil
        case .record(let r): return sequencePiece(r).map { .sequence([$0], afterPanel: nil) }
        case .list(let values):
            let texts = values.compactMap(\.text)
            if texts.count == values.count { return .text(texts.joined(separator: " ")) }
            // Texts and images-with-decisions: a generated sequence (gill-story), shown in its order.
            var pieces: [SequencePiece] = []
            for v in values {
                if let t = v.text { pieces.append(.text(t)) }
                else if let r = v.record, let piece = sequencePiece(r) { pieces.append(piece) }
                else { return nil }
            }
            return .sequence(pieces, afterPanel: nil)
        }
    }

    private func file(_ ref: ImageRef) -> MediaFile {
        MediaFile(path: ref.path ?? media.url(hash: ref.hash, ext: ref.ext).path, hash: ref.hash)
    }

    /// One image of a sequence: `image` (shown), `decision`, and what is known of `p_generate`,
    /// `p_retrieve`, `generated` (+ `generated_score`) and `retrieved` (ranked pool ids).
    private func sequencePiece(_ r: [String: Value]) -> SequencePiece? {
        guard r["image"] != nil || r["decision"] != nil else { return nil }
        var decision = "image", probability: Double?
        if case .choice(let c, let p)? = r["decision"] { decision = c; probability = p }
        var scores: [SequenceScore] = []
        for name in ["p_generate", "p_retrieve", "generated_score"] {
            if let n = r[name]?.number { scores.append(SequenceScore(name: name, value: n)) }
        }
        var alternatives: [SequenceAlternative] = []
        if let g = r["generated"]?.image { alternatives.append(SequenceAlternative(label: "generated", image: file(g), score: r["generated_score"]?.number)) }
        if case .ranked(let candidates)? = r["retrieved"] {
            for c in candidates {
                // The top candidate's copy is stored with the result; the others resolve through the collection.
                let image = c.id == candidates.first?.id ? r["retrieved_image"]?.image.map(file) ?? panels[c.id] : panels[c.id]
                alternatives.append(SequenceAlternative(label: "retrieved " + c.id, image: image, score: c.score))
            }
        }
        return .image(r["image"]?.image.map(file), decision: decision, probability: probability, scores: scores, alternatives: alternatives)
    }
}
