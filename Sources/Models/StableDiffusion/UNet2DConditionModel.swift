import Foundation
import Tensor

/// The Stable Diffusion v1.x denoiser: diffusers' `UNet2DConditionModel` for the configurations
/// `UNetConfig` accepts, loaded from a `unet/` folder (config.json + safetensors, fp32 or fp16).
///
/// `forward` is one noise prediction: `[B, in, h, w]` latents, a timestep per batch row and
/// `[B, T, cross_attention_dim]` encoder states → `[B, out, h, w]`.
public struct UNet2DConditionModel: Sendable {
    public let config: UNetConfig
    let timeLinear1: LinearLayer, timeLinear2: LinearLayer
    let convIn: Conv2DLayer
    let down: [DownBlock]
    let mid: MidBlock
    let up: [UpBlock]
    let normOut: GroupNormLayer
    let convOut: Conv2DLayer

    struct DownBlock: Sendable {
        var resnets: [ResnetBlock2D]
        var attentions: [Transformer2D]
        var downsample: Conv2DLayer?
    }

    struct MidBlock: Sendable {
        var resnets: [ResnetBlock2D]
        var attention: Transformer2D
    }

    struct UpBlock: Sendable {
        var resnets: [ResnetBlock2D]
        var attentions: [Transformer2D]
        var upsample: Conv2DLayer?
    }

    /// Loads `folder/config.json` and the weights; every checkpoint tensor must be used. `precision`
    /// `.stored` keeps an fp16 export's matrices and kernels in f16; `.float32` widens them.
    public static func load(from folder: URL, precision: WeightPrecision = .stored) throws -> UNet2DConditionModel {
        let configURL = folder.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw ModelError(file: folder.path, "no config.json: not a diffusers unet/ folder")
        }
        let config = try UNetConfig(url: configURL)
        let reader = CheckpointReader(try diffusersWeights(in: folder), configName: configURL.path, precision: precision)
        let model = try UNet2DConditionModel(config: config, reader: reader)
        try reader.requireAllUsed()
        return model
    }

    /// Builds the model from weights already opened (e.g. random weights written by `SDBench`).
    public init(config c: UNetConfig, reader r: WeightSource) throws {
        config = c
        let ch = c.blockOutChannels, n = ch.count
        let temb = ch[0] * 4
        let groups = c.normNumGroups, eps = c.normEps
        timeLinear1 = try .load(r, "time_embedding.linear_1", in: ch[0], out: temb)
        timeLinear2 = try .load(r, "time_embedding.linear_2", in: temb, out: temb)
        convIn = try .load(r, "conv_in", in: c.inChannels, out: ch[0], kernel: 3)
        var down: [DownBlock] = []
        var outChannels = ch[0]
        for (i, type) in c.downBlockTypes.enumerated() {
            let inChannels = outChannels
            outChannels = ch[i]
            let p = "down_blocks.\(i)."
            var block = DownBlock(resnets: [], attentions: [], downsample: nil)
            for j in 0..<c.layersPerBlock {
                block.resnets.append(try .load(r, p + "resnets.\(j).", in: j == 0 ? inChannels : outChannels, out: outChannels,
                                               temb: temb, groups: groups, eps: eps, outputScale: c.resnetOutScaleFactor))
                if type == "CrossAttnDownBlock2D" {
                    block.attentions.append(try .load(r, p + "attentions.\(j).", channels: outChannels, heads: c.attentionHeads[i],
                                                      layers: c.transformerLayersPerBlock[i], crossAttentionDim: c.crossAttentionDim,
                                                      groups: groups, linearProjection: c.useLinearProjection))
                }
            }
            if i < n - 1 {
                block.downsample = try .load(r, p + "downsamplers.0.conv", in: outChannels, out: outChannels, kernel: 3, stride: 2,
                                             padding: .uniform(c.downsamplePadding))
            }
            down.append(block)
        }
        self.down = down
        let last = ch[n - 1]
        mid = MidBlock(
            resnets: try (0..<2).map {
                try .load(r, "mid_block.resnets.\($0).", in: last, out: last, temb: temb, groups: groups, eps: eps,
                          outputScale: c.midBlockScaleFactor)
            },
            attention: try .load(r, "mid_block.attentions.0.", channels: last, heads: c.attentionHeads[n - 1],
                                 layers: c.transformerLayersPerBlock[n - 1], crossAttentionDim: c.crossAttentionDim, groups: groups,
                                 linearProjection: c.useLinearProjection))
        let reversed = Array(ch.reversed())
        let reversedHeads = Array(c.attentionHeads.reversed())
        let reversedLayers = Array(c.transformerLayersPerBlock.reversed())
        var up: [UpBlock] = []
        outChannels = reversed[0]
        for (i, type) in c.upBlockTypes.enumerated() {
            let prevOutput = outChannels
            outChannels = reversed[i]
            let inChannels = reversed[min(i + 1, n - 1)]
            let p = "up_blocks.\(i)."
            var block = UpBlock(resnets: [], attentions: [], upsample: nil)
            let layers = c.layersPerBlock + 1
            for j in 0..<layers {
                let skip = j == layers - 1 ? inChannels : outChannels
                let resIn = j == 0 ? prevOutput : outChannels
                block.resnets.append(try .load(r, p + "resnets.\(j).", in: resIn + skip, out: outChannels, temb: temb,
                                               groups: groups, eps: eps, outputScale: c.resnetOutScaleFactor))
                if type == "CrossAttnUpBlock2D" {
                    block.attentions.append(try .load(r, p + "attentions.\(j).", channels: outChannels, heads: reversedHeads[i],
                                                      layers: reversedLayers[i], crossAttentionDim: c.crossAttentionDim,
                                                      groups: groups, linearProjection: c.useLinearProjection))
                }
            }
            if i < n - 1 {
                block.upsample = try .load(r, p + "upsamplers.0.conv", in: outChannels, out: outChannels, kernel: 3)
            }
            up.append(block)
        }
        self.up = up
        normOut = try .load(r, "conv_norm_out", channels: ch[0], groups: groups, eps: eps)
        convOut = try .load(r, "conv_out", in: ch[0], out: c.outChannels, kernel: 3)
    }

    /// diffusers' `get_timestep_embedding` (max period 10000) in float32, cos first when
    /// `flip_sin_to_cos`.
    public func timestepEmbedding(_ timesteps: [Float]) -> Tensor {
        let dim = config.blockOutChannels[0], half = dim / 2
        let logPeriod = Float(-log(10000.0))
        let denominator = Float(half - config.freqShift)
        let freqs = (0..<half).map { Foundation.exp(logPeriod * Float($0) / denominator) }
        var out = [Float](repeating: 0, count: timesteps.count * dim)
        for (b, t) in timesteps.enumerated() {
            for i in 0..<half {
                let arg = t * freqs[i]
                let (first, second) = config.flipSinToCos ? (Foundation.cos(arg), Foundation.sin(arg)) : (Foundation.sin(arg), Foundation.cos(arg))
                out[b * dim + i] = first
                out[b * dim + half + i] = second
            }
        }
        return Tensor(zeros: [timesteps.count, dim]).replacing(out)
    }

    /// One noise prediction.
    ///
    /// - Parameters:
    ///   - sample: `[B, in_channels, h, w]` latents (h, w multiples of 2^(blocks−1) are fastest; others are handled).
    ///   - timesteps: one value, or one per batch row.
    ///   - promptEmbeddings: `[B, T, cross_attention_dim]`.
    public func forward(_ sample: Tensor, timesteps: [Float], promptEmbeddings: Tensor) throws -> Tensor {
        let c = config
        guard sample.rank == 4, sample.shape[1] == c.inChannels else {
            throw TensorError("UNet: sample must be [B, \(c.inChannels), h, w], got \(sample.shape)")
        }
        let b = sample.shape[0]
        guard promptEmbeddings.rank == 3, promptEmbeddings.shape[0] == b, promptEmbeddings.shape[2] == c.crossAttentionDim else {
            throw TensorError("UNet: prompt embeddings must be [\(b), T, \(c.crossAttentionDim)], got \(promptEmbeddings.shape)")
        }
        guard timesteps.count == 1 || timesteps.count == b else {
            throw TensorError("UNet: \(timesteps.count) timesteps for a batch of \(b)")
        }
        let ts = timesteps.count == 1 ? Array(repeating: timesteps[0], count: b) : timesteps
        let groups = Threads.count
        if groups > 1, b >= groups, b % groups == 0 {
            return try forwardInGroups(groups, sample, timesteps: ts, promptEmbeddings: promptEmbeddings)
        }
        return try forwardBatch(sample, timesteps: ts, promptEmbeddings: promptEmbeddings)
    }

    /// The batch cut into `groups` equal slices, one per thread, each run single-threaded (OpenBLAS too) and
    /// put back in order. On two cores a single-threaded half runs the whole step's work at one core's full
    /// rate, where threading each product leaves the attention, norms, transforms and copies between them to
    /// share a core with OpenBLAS's hand-offs: two single-threaded SD v1.5 64×64 steps at once take 16.9 s
    /// each, the same as one alone (`bench sd --quick --threads 1` run twice side by side), against 10.3 s for
    /// one 2-thread step of the same batch of two. Rows are independent, so each equals the whole batch's to
    /// float rounding (its products are narrower); the groups depend only on the batch and thread counts.
    private func forwardInGroups(_ groups: Int, _ sample: Tensor, timesteps: [Float], promptEmbeddings: Tensor) throws -> Tensor {
        let b = sample.shape[0], per = b / groups
        func rows(_ t: Tensor, _ g: Int) throws -> Tensor {
            let n = t.count / b
            return try Tensor(shape: [per] + t.shape.dropFirst(), data: Array(t.data[(g * per * n)..<((g + 1) * per * n)]))
        }
        let parts = try Threads.singleThreadedGroups(groups) { g in
            try forwardBatch(rows(sample, g), timesteps: Array(timesteps[(g * per)..<((g + 1) * per)]),
                             promptEmbeddings: rows(promptEmbeddings, g))
        }
        return try Tensor(shape: [b] + parts[0].shape.dropFirst(), data: parts.flatMap(\.data))
    }

    /// `forward` on a validated batch, with one timestep per row.
    private func forwardBatch(_ sample: Tensor, timesteps ts: [Float], promptEmbeddings: Tensor) throws -> Tensor {
        let c = config
        let b = sample.shape[0]
        let promptLength = promptEmbeddings.shape[1]
        let flatPrompt = try promptEmbeddings.reshaped([b * promptLength, c.crossAttentionDim])
        var emb = try timeLinear2(activated(timeLinear1(timestepEmbedding(ts)), .silu))
        applyActivation(.silu, to: &emb)   // every ResNet block applies SiLU before its projection

        var h = try convIn(sample)
        var residuals = [h]
        for block in down {
            for (j, resnet) in block.resnets.enumerated() {
                h = try resnet(h, activatedTemb: emb)
                if j < block.attentions.count { h = try block.attentions[j](h, promptEmbeddings: flatPrompt, promptLength: promptLength) }
                residuals.append(h)
            }
            if let ds = block.downsample {
                h = try ds(h)
                residuals.append(h)
            }
        }
        h = try mid.resnets[0](h, activatedTemb: emb)
        h = try mid.attention(h, promptEmbeddings: flatPrompt, promptLength: promptLength)
        h = try mid.resnets[1](h, activatedTemb: emb)
        for block in up {
            for (j, resnet) in block.resnets.enumerated() {
                guard let skip = residuals.popLast() else { throw TensorError("UNet: skip connections exhausted") }
                h = try resnet(concatChannels(h, skip), activatedTemb: emb)
                if j < block.attentions.count { h = try block.attentions[j](h, promptEmbeddings: flatPrompt, promptLength: promptLength) }
            }
            if let us = block.upsample {
                // The next skip's size (what diffusers' forward_upsample_size passes when h, w are odd).
                let target = residuals.last?.shape ?? [b, 0, h.shape[2] * 2, h.shape[3] * 2]
                h = try us(upsampleNearest(h, outHeight: target[2], outWidth: target[3]))
            }
        }
        return try convOut(normOut(h, silu: true))
    }
}

/// `torch.cat([a, b], dim=1)` for NCHW tensors of equal batch and spatial size.
func concatChannels(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    guard a.rank == 4, b.rank == 4, a.shape[0] == b.shape[0], a.shape[2] == b.shape[2], a.shape[3] == b.shape[3] else {
        throw TensorError("cannot concatenate \(a.shape) and \(b.shape) along channels")
    }
    let batch = a.shape[0], ea = a.count / batch, eb = b.count / batch
    var out = [Float]()
    out.reserveCapacity(a.count + b.count)
    for i in 0..<batch {
        out.append(contentsOf: a.data[(i * ea)..<((i + 1) * ea)])
        out.append(contentsOf: b.data[(i * eb)..<((i + 1) * eb)])
    }
    return try Tensor(shape: [batch, a.shape[1] + b.shape[1], a.shape[2], a.shape[3]], data: out)
}

extension Tensor {
    /// The same shape with new values (the count is the caller's guarantee).
    func replacing(_ values: [Float]) -> Tensor {
        var t = self
        t.data = values
        return t
    }
}
