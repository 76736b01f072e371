import Tensor

/// CLIP's vision transformer (`CLIPVisionTransformer`) and its optional `visual_projection`.
///
/// Input is preprocessed pixels `[B, C, H, W]` (see `CLIPImageProcessor`); all images of a
/// batch run as one `[B·T, D]` matrix through every linear layer.
public struct CLIPVisionTower: Sendable {
    public let config: CLIPVisionConfig
    var classEmbedding: Tensor
    var patchWeight: Tensor
    var positionEmbedding: Tensor
    var preLayerNorm: CLIPLayerNorm
    var layers: [CLIPEncoderLayer]
    var postLayerNorm: CLIPLayerNorm
    /// `[projection_dim, hidden_size]`, absent for a bare `CLIPVisionModel`.
    var projection: Weight?

    /// Outputs of one forward pass.
    public struct Output: Sendable {
        /// `[B, T, D]`, before `post_layernorm` (transformers' `last_hidden_state`).
        public var lastHiddenState: Tensor
        /// `[B, D]`: post-layernormed class token (transformers' `pooler_output`).
        public var pooled: Tensor
        /// `[B, projection_dim]`, when the model has a `visual_projection`.
        public var projected: Tensor?
    }

    /// Loads tensors named `prefix + "embeddings.…"` etc. (`prefix` is `vision_model.`), and the
    /// projection from `projectionName` when given.
    static func load(_ reader: CheckpointReader, config c: CLIPVisionConfig, prefix: String,
                     projectionName: String?, projectionDim: Int?) throws -> CLIPVisionTower {
        let d = c.hiddenSize
        let classEmbedding = try reader.take(prefix + "embeddings.class_embedding", shape: [d])
        let patchWeight = try reader.take(prefix + "embeddings.patch_embedding.weight",
                                          shape: [d, c.numChannels, c.patchSize, c.patchSize])
        let positionEmbedding = try reader.take(prefix + "embeddings.position_embedding.weight", shape: [c.sequenceLength, d])
        reader.ignore(prefix + "embeddings.position_ids")
        let pre = try CLIPLayerNorm.load(reader, prefix + "pre_layrnorm", d: d, eps: c.layerNormEps)
        var layers: [CLIPEncoderLayer] = []
        for i in 0..<c.numHiddenLayers {
            layers.append(try CLIPEncoderLayer.load(reader, prefix: "\(prefix)encoder.layers.\(i).", d: d, ff: c.intermediateSize))
        }
        let post = try CLIPLayerNorm.load(reader, prefix + "post_layernorm", d: d, eps: c.layerNormEps)
        var projection: Weight?
        if let projectionName, let projectionDim {
            projection = try reader.takeWeight(projectionName, shape: [projectionDim, d])
        }
        return CLIPVisionTower(config: c, classEmbedding: classEmbedding, patchWeight: patchWeight,
                               positionEmbedding: positionEmbedding, preLayerNorm: pre, layers: layers,
                               postLayerNorm: post, projection: projection)
    }

    /// Whether `visual_projection` is present.
    public var hasProjection: Bool { projection != nil }

    /// Runs the tower on `[B, C, image_size, image_size]` pixels.
    public func forward(pixelValues: Tensor) throws -> Output {
        let c = config
        guard pixelValues.rank == 4, pixelValues.shape[1] == c.numChannels,
              pixelValues.shape[2] == c.imageSize, pixelValues.shape[3] == c.imageSize else {
            throw TensorError("CLIP vision: pixel values must be [B, \(c.numChannels), \(c.imageSize), \(c.imageSize)], got \(pixelValues.shape)")
        }
        let b = pixelValues.shape[0], d = c.hiddenSize, t = c.sequenceLength
        let patches = try patchEmbedding(pixelValues, weight: patchWeight)  // [B, T-1, D]
        // [class; patches] + positions, per image.
        var tokens = [Float](repeating: 0, count: b * t * d)
        tokens.withUnsafeMutableBufferPointer { o in
            patches.data.withUnsafeBufferPointer { p in
                classEmbedding.data.withUnsafeBufferPointer { cls in
                    positionEmbedding.data.withUnsafeBufferPointer { pos in
                        for bi in 0..<b {
                            let dst = o.baseAddress! + bi * t * d
                            for j in 0..<d { dst[j] = cls[j] + pos[j] }
                            let src = p.baseAddress! + bi * (t - 1) * d
                            for j in 0..<((t - 1) * d) { dst[d + j] = src[j] + pos[d + j] }
                        }
                    }
                }
            }
        }
        var x = try preLayerNorm(Tensor(shape: [b * t, d], data: tokens))
        for layer in layers {
            x = try layer.forward(x, batch: b, sequenceLength: t, heads: c.numAttentionHeads,
                                  activation: c.hiddenAct, eps: c.layerNormEps, causal: false)
        }
        let classRows = try x.gatherRows((0..<b).map { $0 * t })
        let pooled = try postLayerNorm(classRows)
        let projected = try projection.map { try linear(pooled, weight: $0) }
        return Output(lastHiddenState: try x.reshaped([b, t, d]), pooled: pooled, projected: projected)
    }

    /// Multiply-adds of one image's forward pass, ×2 = FLOPs (linears, patch conv and attention).
    public var flopsPerImage: Double {
        let c = config
        let t = Double(c.sequenceLength), d = Double(c.hiddenSize), ff = Double(c.intermediateSize)
        let patchK = Double(c.numChannels * c.patchSize * c.patchSize)
        let perLayer = t * d * 3 * d + t * d * d + 2 * t * d * ff + 2 * t * t * d
        var macs = (t - 1) * patchK * d + Double(c.numHiddenLayers) * perLayer
        if let projection { macs += Double(projection.count) }
        return 2 * macs
    }
}
