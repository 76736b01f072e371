import Tensor

/// CLIP's text transformer (`CLIPTextTransformer`) and its optional `text_projection`.
///
/// Causal self-attention; the pooled output is the final-layer-normed hidden state at the
/// end-of-text position, chosen as transformers does: the first `eos_token_id` in each
/// sequence, or — for configs with the pre-#24773 `eos_token_id == 2` — the position of the
/// highest token id.
public struct CLIPTextTower: Sendable {
    public let config: CLIPTextConfig
    var tokenEmbedding: Weight
    var positionEmbedding: Tensor
    var layers: [CLIPEncoderLayer]
    var finalLayerNorm: CLIPLayerNorm
    /// `[projection_dim, hidden_size]`, absent for a bare `CLIPTextModel`.
    var projection: Weight?

    /// Outputs of one forward pass.
    public struct Output: Sendable {
        /// `[B, T, D]` after `final_layer_norm` (Stable Diffusion's `prompt_embeds`); `T` may be
        /// shorter than the input when only pooled outputs were requested.
        public var lastHiddenState: Tensor
        /// `[B, D]` at the end-of-text positions.
        public var pooled: Tensor
        /// `[B, projection_dim]`, when the model has a `text_projection`.
        public var projected: Tensor?
        /// The pooled position of each sequence.
        public var poolIndices: [Int]
    }

    static func load(_ reader: CheckpointReader, config c: CLIPTextConfig, prefix: String,
                     projectionName: String?, projectionDim: Int?) throws -> CLIPTextTower {
        let d = c.hiddenSize
        let token = try reader.takeWeight(prefix + "embeddings.token_embedding.weight", shape: [c.vocabSize, d])
        let position = try reader.take(prefix + "embeddings.position_embedding.weight", shape: [c.maxPositionEmbeddings, d])
        reader.ignore(prefix + "embeddings.position_ids")
        var layers: [CLIPEncoderLayer] = []
        for i in 0..<c.numHiddenLayers {
            layers.append(try CLIPEncoderLayer.load(reader, prefix: "\(prefix)encoder.layers.\(i).", d: d, ff: c.intermediateSize))
        }
        let final = try CLIPLayerNorm.load(reader, prefix + "final_layer_norm", d: d, eps: c.layerNormEps)
        var projection: Weight?
        if let projectionName, let projectionDim {
            projection = try reader.takeWeight(projectionName, shape: [projectionDim, d])
        }
        return CLIPTextTower(config: c, tokenEmbedding: token, positionEmbedding: position, layers: layers,
                             finalLayerNorm: final, projection: projection)
    }

    /// Whether `text_projection` is present.
    public var hasProjection: Bool { projection != nil }

    /// The position transformers pools at for one sequence of ids.
    public func poolIndex(_ ids: [Int]) -> Int {
        if config.eosTokenID == 2 {
            // Legacy rule: argmax of the ids (first occurrence of the maximum).
            var best = 0
            for (i, id) in ids.enumerated() where id > ids[best] { best = i }
            return best
        }
        // First eos; torch's argmax over an all-zero mask gives 0.
        return ids.firstIndex(of: config.eosTokenID) ?? 0
    }

    /// Runs the tower on equally long id sequences.
    ///
    /// - Parameter fullSequence: when false, positions after the last pooled token are not
    ///   computed — with causal attention they cannot change the pooled output — and
    ///   `lastHiddenState` is cut to that length.
    public func forward(tokenIDs: [[Int]], fullSequence: Bool = true) throws -> Output {
        let c = config
        guard let t0 = tokenIDs.first?.count, t0 > 0 else { throw TensorError("CLIP text: no token ids given") }
        for (i, ids) in tokenIDs.enumerated() {
            guard ids.count == t0 else {
                throw TensorError("CLIP text: sequence \(i) has \(ids.count) tokens, sequence 0 has \(t0); pad them to one length")
            }
            if let bad = ids.first(where: { $0 < 0 || $0 >= c.vocabSize }) {
                throw TensorError("CLIP text: token id \(bad) in sequence \(i) is outside the vocabulary 0..<\(c.vocabSize)")
            }
        }
        guard t0 <= c.maxPositionEmbeddings else {
            throw TensorError("CLIP text: \(t0) tokens exceed max_position_embeddings \(c.maxPositionEmbeddings)")
        }
        let poolIndices = tokenIDs.map(poolIndex)
        let t = fullSequence ? t0 : (poolIndices.max() ?? 0) + 1
        let b = tokenIDs.count, d = c.hiddenSize
        var x = try tokenEmbedding.gatherRows(tokenIDs.flatMap { $0.prefix(t) })
        x.data.withUnsafeMutableBufferPointer { xp in
            positionEmbedding.data.withUnsafeBufferPointer { pp in
                for bi in 0..<b {
                    let row = xp.baseAddress! + bi * t * d
                    for j in 0..<(t * d) { row[j] += pp[j] }
                }
            }
        }
        for layer in layers {
            x = try layer.forward(x, batch: b, sequenceLength: t, heads: c.numAttentionHeads,
                                  activation: c.hiddenAct, eps: c.layerNormEps, causal: true)
        }
        x = try finalLayerNorm(x)
        let pooled = try x.gatherRows(poolIndices.enumerated().map { $0.offset * t + $0.element })
        let projected = try projection.map { try linear(pooled, weight: $0) }
        return Output(lastHiddenState: try x.reshaped([b, t, d]), pooled: pooled, projected: projected,
                      poolIndices: poolIndices)
    }
}
