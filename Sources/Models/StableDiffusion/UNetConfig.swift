import Foundation

/// The `unet/config.json` of a diffusers `UNet2DConditionModel`, restricted to the SD v1.x
/// family: `CrossAttnDownBlock2D`/`DownBlock2D` down, `UNetMidBlock2DCrossAttn` mid,
/// `UpBlock2D`/`CrossAttnUpBlock2D` up, positional time embedding, GEGLU transformer blocks,
/// conv or linear projections. Any key that would change the architecture beyond that is
/// refused, naming the key.
public struct UNetConfig: Decodable, Sendable, Equatable {
    public var inChannels = 4
    public var outChannels = 4
    public var sampleSize = 64
    public var blockOutChannels = [320, 640, 1280, 1280]
    public var downBlockTypes = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
    public var upBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    public var layersPerBlock = 2
    /// Heads per block (diffusers' historical `attention_head_dim` means the head *count* here).
    public var attentionHeads = [8, 8, 8, 8]
    public var transformerLayersPerBlock = [1, 1, 1, 1]
    public var crossAttentionDim = 768
    public var normNumGroups = 32
    public var normEps: Float = 1e-5
    public var flipSinToCos = true
    public var freqShift = 0
    public var useLinearProjection = false
    public var downsamplePadding = 1
    public var midBlockScaleFactor: Float = 1
    public var resnetOutScaleFactor: Float = 1

    /// SD v1.x defaults (the values of runwayml/stable-diffusion-v1-5's unet/config.json).
    public init() {}

    public init(url: URL) throws {
        self = try ConfigFile.read(UNetConfig.self, from: url)
    }

    public init(from decoder: any Decoder) throws {
        let r = try decoder.container(keyedBy: ConfigKey.self)
        func key(_ name: String) -> ConfigKey { ConfigKey(name) }
        let d = UNetConfig()
        inChannels = try r.value(key("in_channels"), default: d.inChannels)
        outChannels = try r.value(key("out_channels"), default: d.outChannels)
        sampleSize = try r.value(key("sample_size"), default: d.sampleSize)
        blockOutChannels = try r.value(key("block_out_channels"), default: d.blockOutChannels)
        let n = blockOutChannels.count
        downBlockTypes = try r.value(key("down_block_types"), default: d.downBlockTypes)
        upBlockTypes = try r.value(key("up_block_types"), default: d.upBlockTypes)
        layersPerBlock = try r.value(key("layers_per_block"), default: d.layersPerBlock)
        if r.isSet("num_attention_heads") {
            throw r.invalid(key("num_attention_heads"), "is not used by UNet2DConditionModel for SD v1.x; set attention_head_dim")
        }
        attentionHeads = try r.intOrList(key("attention_head_dim"), default: 8, count: n)
        transformerLayersPerBlock = try r.intOrList(key("transformer_layers_per_block"), default: 1, count: n)
        if let list = try? r.decode([Double].self, forKey: key("cross_attention_dim")) {
            throw r.invalid(key("cross_attention_dim"), "a per-block list (\(list.count) entries) is not supported")
        }
        crossAttentionDim = try r.value(key("cross_attention_dim"), default: 1280)   // diffusers' class default
        normNumGroups = try r.value(key("norm_num_groups"), default: d.normNumGroups)
        normEps = Float(try r.value(key("norm_eps"), default: Double(d.normEps)))
        flipSinToCos = try r.value(key("flip_sin_to_cos"), default: true)
        freqShift = try r.value(key("freq_shift"), default: 0)
        useLinearProjection = try r.value(key("use_linear_projection"), default: false)
        downsamplePadding = try r.value(key("downsample_padding"), default: 1)
        midBlockScaleFactor = Float(try r.value(key("mid_block_scale_factor"), default: 1.0))
        resnetOutScaleFactor = Float(try r.value(key("resnet_out_scale_factor"), default: 1.0))

        // Architecture switches outside the SD v1.x family.
        for key in ["class_embed_type", "addition_embed_type", "encoder_hid_dim", "encoder_hid_dim_type", "time_cond_proj_dim",
                    "num_class_embeds", "projection_class_embeddings_input_dim", "timestep_post_act", "time_embedding_dim",
                    "cross_attention_norm", "reverse_transformer_layers_per_block", "addition_time_embed_dim"] {
            try r.requireNull(key)
        }
        for key in ["dual_cross_attention", "only_cross_attention", "center_input_sample", "resnet_skip_time_act",
                    "class_embeddings_concat", "mid_block_only_cross_attention"] {
            try r.requireFalse(key)
        }
        try r.require("act_fn", oneOf: ["silu"])
        try r.require("time_embedding_act_fn", oneOf: ["silu"])
        try r.require("time_embedding_type", oneOf: ["positional"])
        try r.require("resnet_time_scale_shift", oneOf: ["default"])
        try r.require("mid_block_type", oneOf: ["UNetMidBlock2DCrossAttn"])
        try r.require("attention_type", oneOf: ["default"])
        try r.require("conv_in_kernel", oneOf: [3])
        try r.require("conv_out_kernel", oneOf: [3])

        guard n >= 1, downBlockTypes.count == n, upBlockTypes.count == n else {
            throw r.invalid(key("down_block_types"), "\(downBlockTypes.count) down and \(upBlockTypes.count) up blocks for \(n) block_out_channels")
        }
        for t in downBlockTypes where t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
            throw r.invalid(key("down_block_types"), "'\(t)' is not supported (CrossAttnDownBlock2D, DownBlock2D)")
        }
        for t in upBlockTypes where t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
            throw r.invalid(key("up_block_types"), "'\(t)' is not supported (CrossAttnUpBlock2D, UpBlock2D)")
        }
        guard layersPerBlock >= 1 else { throw r.invalid(key("layers_per_block"), "must be at least 1") }
        for (i, c) in blockOutChannels.enumerated() {
            guard c > 0, c % normNumGroups == 0 else {
                throw r.invalid(key("norm_num_groups"), "\(normNumGroups) groups do not divide block_out_channels[\(i)] = \(c)")
            }
            guard attentionHeads[i] > 0, c % attentionHeads[i] == 0 else {
                throw r.invalid(key("attention_head_dim"), "\(attentionHeads[i]) heads do not divide block_out_channels[\(i)] = \(c)")
            }
        }
        guard blockOutChannels[0] % 2 == 0 else { throw r.invalid(key("block_out_channels"), "the first width must be even (sinusoidal embedding)") }
    }
}
