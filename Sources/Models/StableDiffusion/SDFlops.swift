import Foundation

/// Analytic operation counts (2 per multiply-add) of the convolutions, linears and attention
/// products of one forward pass, for GFLOP/s figures. Norms and activations are not counted.
extension UNet2DConditionModel {
    public func flops(batch b: Int, height h0: Int, width w0: Int, promptLength tc: Int) -> Double {
        let c = config
        var total = 0.0
        func conv(_ cin: Int, _ cout: Int, _ k: Int, _ h: Int, _ w: Int) { total += 2 * Double(b * cin * cout * k * k * h * w) }
        func resnet(_ cin: Int, _ cout: Int, _ h: Int, _ w: Int) {
            conv(cin, cout, 3, h, w); conv(cout, cout, 3, h, w)
            if cin != cout { conv(cin, cout, 1, h, w) }
            total += 2 * Double(b * c.blockOutChannels[0] * 4 * cout)
        }
        func transformer(_ ch: Int, _ layers: Int, _ h: Int, _ w: Int) {
            let t = Double(h * w), d = Double(ch), bb = Double(b), ctx = Double(c.crossAttentionDim), tcd = Double(tc)
            total += 2 * 2 * bb * t * d * d   // proj_in, proj_out
            for _ in 0..<layers {
                total += 2 * bb * t * d * 3 * d + 4 * bb * t * t * d + 2 * bb * t * d * d             // self-attention
                total += 2 * bb * t * d * d + 2 * bb * tcd * ctx * 2 * d + 4 * bb * t * tcd * d + 2 * bb * t * d * d   // cross
                total += 2 * bb * t * d * 8 * d + 2 * bb * t * 4 * d * d                               // GEGLU feed-forward
            }
        }
        let ch = c.blockOutChannels, n = ch.count
        var h = h0, w = w0
        conv(c.inChannels, ch[0], 3, h, w)
        var skips = [ch[0]]
        var out = ch[0]
        for (i, type) in c.downBlockTypes.enumerated() {
            let inC = out
            out = ch[i]
            for j in 0..<c.layersPerBlock {
                resnet(j == 0 ? inC : out, out, h, w)
                if type == "CrossAttnDownBlock2D" { transformer(out, c.transformerLayersPerBlock[i], h, w) }
                skips.append(out)
            }
            if i < n - 1 { h = (h + 1) / 2; w = (w + 1) / 2; conv(out, out, 3, h, w); skips.append(out) }
        }
        resnet(out, out, h, w); transformer(out, c.transformerLayersPerBlock[n - 1], h, w); resnet(out, out, h, w)
        for (i, type) in c.upBlockTypes.enumerated() {
            let outC = ch[n - 1 - i]
            for _ in 0...c.layersPerBlock {
                let skip = skips.removeLast()
                resnet(out + skip, outC, h, w)
                out = outC
                if type == "CrossAttnUpBlock2D" { transformer(outC, c.transformerLayersPerBlock[n - 1 - i], h, w) }
            }
            if i < n - 1 { h *= 2; w *= 2; conv(outC, outC, 3, h, w) }
        }
        conv(ch[0], c.outChannels, 3, h, w)
        return total
    }
}

extension AutoencoderKL {
    /// Operations of `decode` for one `[1, latent, h, w]` latent.
    public func decodeFlops(height h0: Int, width w0: Int) -> Double {
        let c = config
        var total = 0.0
        func conv(_ cin: Int, _ cout: Int, _ k: Int, _ h: Int, _ w: Int) { total += 2 * Double(cin * cout * k * k * h * w) }
        func resnet(_ cin: Int, _ cout: Int, _ h: Int, _ w: Int) {
            conv(cin, cout, 3, h, w); conv(cout, cout, 3, h, w)
            if cin != cout { conv(cin, cout, 1, h, w) }
        }
        let ch = Array(c.blockOutChannels.reversed())
        var h = h0, w = w0
        conv(c.latentChannels, c.latentChannels, 1, h, w)
        conv(c.latentChannels, ch[0], 3, h, w)
        resnet(ch[0], ch[0], h, w)
        let t = Double(h * w), d = Double(ch[0])
        total += 2 * t * d * 4 * d + 4 * t * t * d
        resnet(ch[0], ch[0], h, w)
        var out = ch[0]
        for i in 0..<ch.count {
            for j in 0...c.layersPerBlock { resnet(j == 0 ? out : ch[i], ch[i], h, w) }
            out = ch[i]
            if i < ch.count - 1 { h *= 2; w *= 2; conv(out, out, 3, h, w) }
        }
        conv(out, c.outChannels, 3, h, w)
        return total
    }
}

extension UNetConfig {
    /// The config as diffusers writes it (what `UNet2DConditionModel.from_pretrained` reads).
    public var jsonObject: [String: Any] {
        ["_class_name": "UNet2DConditionModel", "in_channels": inChannels, "out_channels": outChannels,
         "sample_size": sampleSize, "block_out_channels": blockOutChannels, "down_block_types": downBlockTypes,
         "up_block_types": upBlockTypes, "layers_per_block": layersPerBlock, "attention_head_dim": attentionHeads,
         "transformer_layers_per_block": transformerLayersPerBlock, "cross_attention_dim": crossAttentionDim,
         "norm_num_groups": normNumGroups, "norm_eps": Double(normEps), "flip_sin_to_cos": flipSinToCos,
         "freq_shift": freqShift, "use_linear_projection": useLinearProjection, "downsample_padding": downsamplePadding,
         "mid_block_scale_factor": Double(midBlockScaleFactor), "act_fn": "silu"]
    }
}

extension VAEConfig {
    /// The config as diffusers writes it (what `AutoencoderKL.from_pretrained` reads).
    public var jsonObject: [String: Any] {
        ["_class_name": "AutoencoderKL", "in_channels": inChannels, "out_channels": outChannels,
         "latent_channels": latentChannels, "block_out_channels": blockOutChannels, "layers_per_block": layersPerBlock,
         "norm_num_groups": normNumGroups, "sample_size": sampleSize, "scaling_factor": Double(scalingFactor),
         "down_block_types": Array(repeating: "DownEncoderBlock2D", count: blockOutChannels.count),
         "up_block_types": Array(repeating: "UpDecoderBlock2D", count: blockOutChannels.count), "act_fn": "silu"]
    }
}
