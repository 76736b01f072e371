import Foundation
import Imaging
import Models
import Store
import Stories
import Tensor
import Workflow

/// `embed`: CLIP image and/or text embeddings per item, stored as float32 vectors.
public enum EmbedStep {
    public static let kind = StepKind(
        name: "embed", version: 1,
        summary: "CLIP image and/or text embeddings (projected, L2-normalised by default), stored as float32 vectors.",
        scope: .panel,
        params: Params.self,
        inputs: [InputSpec("image", required: false, doc: "an image column"),
                 InputSpec("text", required: false, doc: "a text column (a list is joined with spaces)")],
        outputs: ["image_embedding", "text_embedding"],
        modelKinds: ["clip"], defaultBatchSize: 16, scopeSelectable: true,
        makeRunner: { params, config in
            Runner(model: try SharedModels.clip.get(config.model), projected: params.projected, normalize: params.normalize)
        })

    public struct Params: StepParams {
        @Param(help: "projected embeddings (true) or the tower's pooler output") public var projected = true
        @Param(help: "L2-normalise the vectors") public var normalize = true
        public init() {}
    }

    struct Runner: StepRunner {
        let model: CLIPModel
        let projected: Bool
        let normalize: Bool

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            var outputs = [Outputs](repeating: [:], count: items.count)
            var failures = [String?](repeating: nil, count: items.count)
            // Images: decode each (a bad file fails its item only), then one batched forward.
            var images: [Image] = [], imageSlots: [Int] = []
            var texts: [String] = [], textSlots: [Int] = []
            for (i, item) in items.enumerated() {
                if let ref = item.inputs["image"] {
                    do { images.append(try services.rgbImage(ref, input: "image")); imageSlots.append(i) }
                    catch { failures[i] = "\(error)"; continue }
                }
                if let t = item.inputs["text"] {
                    guard let s = CLIPText.flatten(t) else { failures[i] = "input text is not text"; continue }
                    texts.append(s); textSlots.append(i)
                }
                if item.inputs["image"] == nil && item.inputs["text"] == nil { failures[i] = "embed needs an image or a text input" }
            }
            if services.isCancelled() { throw CancellationError() }
            if !images.isEmpty {
                let vectors = try projected ? model.imageEmbeddings(images, projected: true) : model.visionPoolerOutput(images)
                for (slot, v) in zip(imageSlots, vectors) { outputs[slot]["image_embedding"] = .vector(normalize ? CLIPText.normalized(v) : v) }
            }
            if !texts.isEmpty {
                let vectors = try model.textEmbeddings(texts, projected: projected)
                for (slot, v) in zip(textSlots, vectors) { outputs[slot]["text_embedding"] = .vector(normalize ? CLIPText.normalized(v) : v) }
            }
            return items.indices.map { i in failures[i].map(ItemOutcome.failure) ?? .success(outputs[i]) }
        }
    }
}

/// `retrieve`: top-k of a pool of vectors for each query vector, scoring the whole pool with one sgemm per
/// batch. Also reports the rank of the query's own item in the pool (for recall@k when the pool holds the
/// ground truth, as in GILL's retrieval evaluation), and the top candidate's image when the pool is panels of
/// the collection (`top_image`, for scoring the retrieved image against the ground truth).
///
/// `exclude_context` follows FROMAGe's and GILL's contextual retrieval on VIST ("don't retrieve previously seen
/// images"): the panels before the query's own, which a story context has already shown, are not candidates.
public enum RetrieveStep {
    public static let kind = StepKind(
        name: "retrieve", version: 2,
        summary: "Rank a pool of embeddings (e.g. every panel image) against a query embedding; top-k with scores.",
        scope: .panel,
        params: Params.self,
        inputs: [InputSpec("query", doc: "a vector (e.g. embed_text.text_embedding)"),
                 InputSpec("pool", aggregate: true, doc: "the vectors to rank (e.g. embed_images.image_embedding)")],
        outputs: ["ranked", "top_score", "top_image", "target_rank", "hit_at_1", "hit_at_k"],
        defaultBatchSize: 64, scopeSelectable: true, scoreOutputs: ["top_score", "target_rank", "hit_at_1", "hit_at_k"],
        makeRunner: { params, config in
            Runner(k: params.k, excludeSameEntry: params.excludeSameEntry, excludeContext: params.excludeContext,
                   panelImages: panelImages(config.collection))
        })

    public struct Params: StepParams {
        @Param(help: "how many candidates to keep", min: 1, max: 1000) public var k = 5
        @Param(help: "skip pool items of the query's own story") public var excludeSameEntry = false
        @Param(help: "skip the panels before the query's own in its story (the images a story context has shown), as GILL's VIST retrieval does")
        public var excludeContext = false
        public init() {}
    }

    /// Panel id (`story-00001#3`) → image file, for `top_image`.
    static func panelImages(_ collection: StoryCollection) -> [String: URL] {
        var out: [String: URL] = [:]
        for entry in collection.entries {
            for (p, panel) in entry.panels.enumerated() {
                guard let path = panel.image else { continue }
                out[ItemID(entry: entry.id, panel: p).description] = path.hasPrefix("/") ? URL(fileURLWithPath: path) : collection.root.appendingPathComponent(path)
            }
        }
        return out
    }

    struct Runner: StepRunner {
        let k: Int
        let excludeSameEntry: Bool
        let excludeContext: Bool
        let panelImages: [String: URL]

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            guard let pool = items.first?.pools["pool"], !pool.isEmpty else {
                return items.map { _ in .failure("the retrieval pool is empty (did its step run?)") }
            }
            let dim = pool[0].value.vector?.count ?? 0
            var poolData = [Float](repeating: 0, count: pool.count * dim)
            for (i, p) in pool.enumerated() {
                guard let v = p.value.vector, v.count == dim else { throw StepError("pool item \(p.id) is not a \(dim)-d vector") }
                poolData.replaceSubrange(i * dim..<(i + 1) * dim, with: v)
            }
            var queries: [[Float]] = [], slots: [Int] = []
            var outcomes = [ItemOutcome?](repeating: nil, count: items.count)
            for (i, item) in items.enumerated() {
                if excludeContext && item.panelIndex == nil {
                    outcomes[i] = .failure("exclude_context needs a panel query (the panels before it are its context): run retrieve on panels, e.g. `panels: last`, not on whole entries")
                    continue
                }
                guard let q = item.inputs["query"]?.vector, q.count == dim else {
                    outcomes[i] = .failure("query is not a \(dim)-d vector (\(item.inputs["query"]?.summary ?? "missing"))")
                    continue
                }
                queries.append(q); slots.append(i)
            }
            if !queries.isEmpty {
                let q = try Tensor(shape: [queries.count, dim], data: queries.flatMap { $0 })
                let p = try Tensor(shape: [pool.count, dim], data: poolData)
                let scores = try matmul(q, p, transposeB: true)   // [queries, pool]
                for (row, slot) in slots.enumerated() {
                    let item = items[slot]
                    let entryPrefix = item.entry.id + "#"
                    var order = Array(0..<pool.count)
                    if excludeSameEntry { order.removeAll { pool[$0].id.hasPrefix(entryPrefix) || pool[$0].id == item.entry.id } }
                    if excludeContext, let panel = item.panelIndex {
                        let shown = Set((0..<panel).map { ItemID(entry: item.entry.id, panel: $0).description })
                        order.removeAll { shown.contains(pool[$0].id) }
                    }
                    let base = row * pool.count
                    order.sort { scores.data[base + $0] > scores.data[base + $1] || (scores.data[base + $0] == scores.data[base + $1] && $0 < $1) }
                    let top = order.prefix(k).map { Candidate(id: pool[$0].id, score: Double(scores.data[base + $0])) }
                    var out: Outputs = ["ranked": .ranked(top), "top_score": .number(top.first?.score ?? .nan)]
                    // Step outputs live in the media store (results keep only hash and extension).
                    if let best = top.first, let url = panelImages[best.id] {
                        let ext = url.pathExtension.lowercased()
                        out["top_image"] = .image(ImageRef(hash: try services.media.put(try Data(contentsOf: url), ext: ext), ext: ext))
                    }
                    // When the pool holds the query's own panel (its ground truth), its rank gives recall@k:
                    // the mean of hit_at_1 / hit_at_k over items.
                    if let rank = order.firstIndex(where: { pool[$0].id == item.id }) {
                        out["target_rank"] = .number(Double(rank + 1))
                        out["hit_at_1"] = .number(rank == 0 ? 1 : 0)
                        out["hit_at_k"] = .number(rank < k ? 1 : 0)
                    }
                    outcomes[slot] = .success(out)
                }
            }
            return outcomes.map { $0 ?? .failure("no result") }
        }
    }
}

/// CLIP metrics for `score`: `clip-image-similarity` (cosine of the image embeddings of two image columns,
/// the GILL paper's metric) and `clip-score` (image–text cosine; with `clipscore: true`, ×100 and clipped at
/// 0 as in CLIPScore, Hessel et al. 2021).
enum CLIPScorer {
    struct Runner: StepRunner {
        let model: CLIPModel
        let metric: ScoreStep.Metric
        let clipscore: Bool

        func run(_ items: [StepItem], services: StepServices) async throws -> [ItemOutcome] {
            var outcomes = [ItemOutcome?](repeating: nil, count: items.count)
            var left: [Image] = [], rightImages: [Image] = [], rightTexts: [String] = [], slots: [Int] = []
            for (i, item) in items.enumerated() {
                do {
                    let ia = try services.rgbImage(item.inputs["a"], input: "a")
                    if metric == .clipImageSimilarity {
                        rightImages.append(try services.rgbImage(item.inputs["b"], input: "b"))
                    } else {
                        guard let b = item.inputs["b"].flatMap(CLIPText.flatten) else { throw StepError("clip-score compares an image (a) with a text (b)") }
                        rightTexts.append(b)
                    }
                    left.append(ia); slots.append(i)
                } catch { outcomes[i] = .failure("\(error)") }
            }
            if !left.isEmpty {
                let ea = try model.imageEmbeddings(left)
                let eb = metric == .clipImageSimilarity ? try model.imageEmbeddings(rightImages) : try model.textEmbeddings(rightTexts)
                for (j, slot) in slots.enumerated() {
                    var s = Double(CLIPText.cosine(ea[j], eb[j]))
                    if metric == .clipScore && clipscore { s = max(100 * s, 0) }
                    outcomes[slot] = .success(["score": .number(s)])
                }
            }
            return outcomes.map { $0 ?? .failure("no result") }
        }
    }

}

enum CLIPText {
    static func flatten(_ v: Value) -> String? {
        switch v {
        case .text(let s): return s
        case .list(let l):
            let parts = l.compactMap(flatten)
            return parts.count == l.count ? parts.joined(separator: " ") : nil
        default: return nil
        }
    }

    static func normalized(_ v: [Float]) -> [Float] {
        let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return n > 0 ? v.map { $0 / n } : v
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for i in 0..<min(a.count, b.count) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i] }
        return dot / max((na * nb).squareRoot(), 1e-12)
    }
}
