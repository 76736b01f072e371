import Foundation
import Tensor

/// `vae/config.json` of a diffusers `AutoencoderKL` (SD v1.x: 4 latent channels, scaling factor 0.18215).
public struct VAEConfig: Decodable, Sendable, Equatable {
    public var inChannels = 3
    public var outChannels = 3
    public var latentChannels = 4
    public var blockOutChannels = [128, 256, 512, 512]
    public var layersPerBlock = 2
    public var normNumGroups = 32
    public var sampleSize = 512
    public var scalingFactor: Float = 0.18215
    public var useQuantConv = true
    public var usePostQuantConv = true
    public var midBlockAddAttention = true

    public init() {}

    public init(url: URL) throws {
        self = try ConfigFile.read(VAEConfig.self, from: url)
    }

    public init(from decoder: any Decoder) throws {
        let r = try decoder.container(keyedBy: ConfigKey.self)
        func key(_ name: String) -> ConfigKey { ConfigKey(name) }
        let d = VAEConfig()
        inChannels = try r.value(key("in_channels"), default: d.inChannels)
        outChannels = try r.value(key("out_channels"), default: d.outChannels)
        latentChannels = try r.value(key("latent_channels"), default: d.latentChannels)
        blockOutChannels = try r.value(key("block_out_channels"), default: [64])
        layersPerBlock = try r.value(key("layers_per_block"), default: 1)
        normNumGroups = try r.value(key("norm_num_groups"), default: d.normNumGroups)
        sampleSize = try r.value(key("sample_size"), default: 32)
        scalingFactor = Float(try r.value(key("scaling_factor"), default: Double(d.scalingFactor)))
        useQuantConv = try r.value(key("use_quant_conv"), default: true)
        usePostQuantConv = try r.value(key("use_post_quant_conv"), default: true)
        midBlockAddAttention = try r.value(key("mid_block_add_attention"), default: true)
        let n = blockOutChannels.count
        let down = try r.value(key("down_block_types"), default: Array(repeating: "DownEncoderBlock2D", count: n))
        let up = try r.value(key("up_block_types"), default: Array(repeating: "UpDecoderBlock2D", count: n))
        guard n >= 1, down.count == n, up.count == n else {
            throw r.invalid(key("down_block_types"), "\(down.count) down and \(up.count) up blocks for \(n) block_out_channels")
        }
        if let t = down.first(where: { $0 != "DownEncoderBlock2D" }) { throw r.invalid(key("down_block_types"), "'\(t)' is not supported (DownEncoderBlock2D)") }
        if let t = up.first(where: { $0 != "UpDecoderBlock2D" }) { throw r.invalid(key("up_block_types"), "'\(t)' is not supported (UpDecoderBlock2D)") }
        try r.require("act_fn", oneOf: ["silu"])
        try r.requireNull("shift_factor")
        try r.requireNull("latents_mean")
        try r.requireNull("latents_std")
        try r.require("norm_type", oneOf: ["group"])
        for (i, c) in blockOutChannels.enumerated() where c <= 0 || c % normNumGroups != 0 {
            throw r.invalid(key("norm_num_groups"), "\(normNumGroups) groups do not divide block_out_channels[\(i)] = \(c)")
        }
    }

    /// How much smaller the latents are than the image (8 for SD v1.x).
    public var scaleFactor: Int { 1 << (blockOutChannels.count - 1) }
}

/// The single-head self-attention of the VAE mid block (GroupNorm, Q/K/V/out with bias,
/// residual). Older exports name the weights `query`/`key`/`value`/`proj_attn`; both load.
struct VAEAttention: Sendable {
    let norm: GroupNormLayer
    let qkv: LinearLayer
    let out: LinearLayer

    static func load(_ r: WeightSource, _ p: String, channels c: Int, groups: Int) throws -> VAEAttention {
        let legacy = !r.has(p + "to_q.weight") && r.has(p + "query.weight")
        let names = legacy ? ["query", "key", "value", "proj_attn"] : ["to_q", "to_k", "to_v", "to_out.0"]
        // Old attention blocks stored these as 1×1 convs [C, C, 1, 1]; current ones as linears.
        func take(_ n: String) throws -> LinearLayer {
            let isConv = r.shape(of: p + n + ".weight")?.count == 4
            return try LinearLayer.load(r, p + n, in: c, out: c, fromConv: isConv)
        }
        let q = try take(names[0]), k = try take(names[1]), v = try take(names[2])
        let qkvBias = (q.bias?.data ?? []) + (k.bias?.data ?? []) + (v.bias?.data ?? [])
        var parts = [q.weight, k.weight, v.weight]
        if Set(parts.map(\.dtype)).count > 1 { parts = parts.map { $0.converted(to: .f32) } }
        return VAEAttention(
            norm: try .load(r, p + "group_norm", channels: c, groups: groups, eps: 1e-6),
            qkv: LinearLayer(weight: try Weight.concatenatingRows(parts),
                             bias: try Tensor(shape: [3 * c], data: qkvBias)),
            out: try take(names[3]))
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let t = h * w
        let proj = try linearFromChannels(norm(x), weight: qkv.weight, bias: qkv.bias)   // [B·HW, 3C]
        var attended = [Float](repeating: 0, count: b * t * c)
        proj.data.withUnsafeBufferPointer { pp in
            attended.withUnsafeMutableBufferPointer { op in
                let base = pp.baseAddress!
                blockedAttention(query: AttentionOperand(base: base, rowStride: 3 * c, offset: 0),
                                 key: AttentionOperand(base: base, rowStride: 3 * c, offset: c),
                                 value: AttentionOperand(base: base, rowStride: 3 * c, offset: 2 * c),
                                 batch: b, queryLength: t, keyLength: t, heads: 1, headDim: c,
                                 out: op.baseAddress!, outStride: c)
            }
        }
        return try linearToChannels(Tensor(shape: [b * t, c], data: attended), weight: out.weight, bias: out.bias,
                                    batch: b, height: h, width: w, adding: x)
    }
}

/// diffusers' `AutoencoderKL`: the decoder (latents → image in [-1, 1]) and the encoder
/// (image → posterior mean), loaded from a `vae/` folder (fp32 or fp16 safetensors).
///
/// Scaling is the caller's: the pipeline divides latents by `config.scalingFactor` before
/// `decode`, and `encode(…, scaled: true)` multiplies the mean by it.
public struct AutoencoderKL: Sendable {
    public let config: VAEConfig
    let encoder: Encoder?
    let decoder: Decoder

    struct MidBlock: Sendable {
        var resnet0: ResnetBlock2D
        var attention: VAEAttention?
        var resnet1: ResnetBlock2D

        static func load(_ r: WeightSource, _ p: String, channels c: Int, groups: Int, attention: Bool) throws -> MidBlock {
            MidBlock(resnet0: try .load(r, p + "resnets.0.", in: c, out: c, temb: nil, groups: groups, eps: 1e-6),
                     attention: attention ? try .load(r, p + "attentions.0.", channels: c, groups: groups) : nil,
                     resnet1: try .load(r, p + "resnets.1.", in: c, out: c, temb: nil, groups: groups, eps: 1e-6))
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            var h = try resnet0(x, activatedTemb: nil)
            if let attention { h = try attention(h) }
            return try resnet1(h, activatedTemb: nil)
        }
    }

    struct Encoder: Sendable {
        var convIn: Conv2DLayer
        var blocks: [(resnets: [ResnetBlock2D], downsample: Conv2DLayer?)]
        var mid: MidBlock
        var normOut: GroupNormLayer
        var convOut: Conv2DLayer
        var quantConv: Conv2DLayer?
    }

    struct Decoder: Sendable {
        var postQuantConv: Conv2DLayer?
        var convIn: Conv2DLayer
        var mid: MidBlock
        var blocks: [(resnets: [ResnetBlock2D], upsample: Conv2DLayer?)]
        var normOut: GroupNormLayer
        var convOut: Conv2DLayer
    }

    /// Loads `folder/config.json` and the weights. With `decoderOnly`, encoder tensors are
    /// skipped (text-to-image never encodes). `precision` as `UNet2DConditionModel.load`.
    public static func load(from folder: URL, decoderOnly: Bool = false, precision: WeightPrecision = .stored) throws -> AutoencoderKL {
        let configURL = folder.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw ModelError(file: folder.path, "no config.json: not a diffusers vae/ folder")
        }
        let config = try VAEConfig(url: configURL)
        let reader = CheckpointReader(try diffusersWeights(in: folder), configName: configURL.path, precision: precision)
        let model = try AutoencoderKL(config: config, reader: reader, decoderOnly: decoderOnly)
        if decoderOnly {
            for name in reader.checkpoint.names where name.hasPrefix("encoder.") || name.hasPrefix("quant_conv.") { reader.ignore(name) }
        }
        try reader.requireAllUsed()
        return model
    }

    public init(config c: VAEConfig, reader r: WeightSource, decoderOnly: Bool = false) throws {
        config = c
        let ch = c.blockOutChannels, n = ch.count, g = c.normNumGroups, lat = c.latentChannels
        if decoderOnly {
            encoder = nil
        } else {
            var blocks: [(resnets: [ResnetBlock2D], downsample: Conv2DLayer?)] = []
            var out = ch[0]
            for i in 0..<n {
                let inC = out
                out = ch[i]
                let p = "encoder.down_blocks.\(i)."
                let resnets = try (0..<c.layersPerBlock).map {
                    try ResnetBlock2D.load(r, p + "resnets.\($0).", in: $0 == 0 ? inC : out, out: out, temb: nil, groups: g, eps: 1e-6)
                }
                let ds = i < n - 1 ? try Conv2DLayer.load(r, p + "downsamplers.0.conv", in: out, out: out, kernel: 3, stride: 2,
                                                          padding: Padding2D(top: 0, left: 0, bottom: 1, right: 1)) : nil
                blocks.append((resnets, ds))
            }
            encoder = Encoder(
                convIn: try .load(r, "encoder.conv_in", in: c.inChannels, out: ch[0], kernel: 3),
                blocks: blocks,
                mid: try .load(r, "encoder.mid_block.", channels: ch[n - 1], groups: g, attention: c.midBlockAddAttention),
                normOut: try .load(r, "encoder.conv_norm_out", channels: ch[n - 1], groups: g, eps: 1e-6),
                convOut: try .load(r, "encoder.conv_out", in: ch[n - 1], out: 2 * lat, kernel: 3),
                quantConv: c.useQuantConv ? try .load(r, "quant_conv", in: 2 * lat, out: 2 * lat, kernel: 1) : nil)
        }
        let reversed = Array(ch.reversed())
        var blocks: [(resnets: [ResnetBlock2D], upsample: Conv2DLayer?)] = []
        var out = reversed[0]
        for i in 0..<n {
            let prev = out
            out = reversed[i]
            let p = "decoder.up_blocks.\(i)."
            let resnets = try (0..<(c.layersPerBlock + 1)).map {
                try ResnetBlock2D.load(r, p + "resnets.\($0).", in: $0 == 0 ? prev : out, out: out, temb: nil, groups: g, eps: 1e-6)
            }
            let us = i < n - 1 ? try Conv2DLayer.load(r, p + "upsamplers.0.conv", in: out, out: out, kernel: 3) : nil
            blocks.append((resnets, us))
        }
        decoder = Decoder(
            postQuantConv: c.usePostQuantConv ? try .load(r, "post_quant_conv", in: lat, out: lat, kernel: 1) : nil,
            convIn: try .load(r, "decoder.conv_in", in: lat, out: ch[n - 1], kernel: 3),
            mid: try .load(r, "decoder.mid_block.", channels: ch[n - 1], groups: g, attention: c.midBlockAddAttention),
            blocks: blocks,
            normOut: try .load(r, "decoder.conv_norm_out", channels: ch[0], groups: g, eps: 1e-6),
            convOut: try .load(r, "decoder.conv_out", in: ch[0], out: c.outChannels, kernel: 3))
    }

    /// `vae.decode(z).sample`: `[B, latent, h, w]` (already divided by the scaling factor) →
    /// `[B, out, h·f, w·f]` in about [-1, 1].
    public func decode(_ latents: Tensor) throws -> Tensor {
        guard latents.rank == 4, latents.shape[1] == config.latentChannels else {
            throw TensorError("VAE decode: latents must be [B, \(config.latentChannels), h, w], got \(latents.shape)")
        }
        let d = decoder
        var h = try d.postQuantConv?(latents) ?? latents
        h = try d.mid(d.convIn(h))
        for block in d.blocks {
            for resnet in block.resnets { h = try resnet(h, activatedTemb: nil) }
            if let us = block.upsample { h = try us(upsampleNearest(h, outHeight: h.shape[2] * 2, outWidth: h.shape[3] * 2)) }
        }
        return try d.convOut(d.normOut(h, silu: true))
    }

    /// The posterior mean of `[B, in, H, W]` images in [-1, 1] (`encode(x).latent_dist.mean`),
    /// times `scaling_factor` when `scaled` (the latents the UNet works on).
    public func encode(_ images: Tensor, scaled: Bool = false) throws -> Tensor {
        guard let e = encoder else { throw TensorError("VAE encode: this model was loaded decoder-only") }
        guard images.rank == 4, images.shape[1] == config.inChannels else {
            throw TensorError("VAE encode: images must be [B, \(config.inChannels), H, W], got \(images.shape)")
        }
        var h = try e.convIn(images)
        for block in e.blocks {
            for resnet in block.resnets { h = try resnet(h, activatedTemb: nil) }
            if let ds = block.downsample { h = try ds(h) }
        }
        h = try e.convOut(e.normOut(e.mid(h), silu: true))
        if let q = e.quantConv { h = try q(h) }
        // Moments are [mean; logvar] along channels: keep the first half.
        let (b, c2, hh, ww) = (h.shape[0], h.shape[1], h.shape[2], h.shape[3])
        let lat = c2 / 2, plane = hh * ww
        var mean = [Float]()
        mean.reserveCapacity(b * lat * plane)
        let s: Float = scaled ? config.scalingFactor : 1
        for bi in 0..<b {
            let start = bi * c2 * plane
            mean.append(contentsOf: h.data[start..<(start + lat * plane)].map { $0 * s })
        }
        return try Tensor(shape: [b, lat, hh, ww], data: mean)
    }
}
