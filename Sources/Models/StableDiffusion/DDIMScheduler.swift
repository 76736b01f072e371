import Tensor

/// Deterministic DDIM (η = 0), matching diffusers' `DDIMScheduler` (0.17 – 0.42).
///
/// Supported: `prediction_type` epsilon and v_prediction; `timestep_spacing` leading (default),
/// trailing, linspace; `beta_schedule` linear, scaled_linear, squaredcos_cap_v2 or
/// `trained_betas`; `steps_offset`; `set_alpha_to_one` (default true); `clip_sample` (default
/// **true**) with `clip_sample_range`. Not supported: η > 0 (stochastic DDIM), thresholding,
/// zero-terminal-SNR rescaling, prediction_type `sample`.
///
/// The trap: DDIM's class default is `clip_sample: true`, and a DDPM-trained config saved with
/// `clip_sample: true` keeps it. Clipping the predicted x₀ to [-1, 1] is right for pixel-space
/// DDPM but ruins *latent* diffusion (SD latents are not bounded by 1), giving washed-out,
/// blotchy images. SD v1.x's published scheduler config sets `clip_sample: false`; this
/// scheduler honours whatever the config says, exactly as diffusers does, so check the file.
public struct DDIMScheduler: DiffusionScheduler {
    public let schedule: NoiseSchedule
    public let timesteps: [Float]
    public var initNoiseSigma: Float { 1 }
    let integerTimesteps: [Int]
    let finalAlphaCumprod: Float
    let clipSample: Bool
    let clipRange: Float
    let stepRatio: Int

    public init(config c: SchedulerConfig, steps: Int) throws {
        try c.rejectUnsupported(scheduler: "DDIM")
        schedule = try NoiseSchedule(c)
        let n = schedule.numTrainTimesteps
        guard steps <= n else { throw c.fail("num_train_timesteps", "\(steps) inference steps exceed \(n) training steps") }
        integerTimesteps = try spacedTimesteps(spacing: c.timestepSpacing ?? "leading", steps: steps, trainSteps: n,
                                                offset: c.stepsOffset ?? 0, config: c)
        if let bad = integerTimesteps.first(where: { $0 < 0 || $0 >= n }) {
            throw c.fail("steps_offset", "gives timestep \(bad) outside 0..<\(n)")
        }
        timesteps = integerTimesteps.map(Float.init)
        finalAlphaCumprod = (c.setAlphaToOne ?? true) ? 1 : schedule.alphasCumprod[0]
        clipSample = c.clipSample ?? true
        clipRange = Float(c.clipSampleRange ?? 1)
        stepRatio = n / steps
    }

    public func scaleModelInput(_ sample: Tensor, step i: Int) -> Tensor { sample }

    public mutating func step(modelOutput: Tensor, step i: Int, sample: Tensor) throws -> Tensor {
        try checkSameShape(modelOutput, sample, "DDIM step")
        let t = integerTimesteps[i]
        let prev = t - stepRatio
        let aT = schedule.alphasCumprod[t]
        let aPrev = prev >= 0 ? schedule.alphasCumprod[prev] : finalAlphaCumprod
        let bT = 1 - aT
        let sqrtA = aT.squareRoot(), sqrtB = bT.squareRoot()
        let sqrtAPrev = aPrev.squareRoot(), sqrtDir = (1 - aPrev).squareRoot()
        var out = sample
        let v = schedule.prediction == .vPrediction, clip = clipSample, r = clipRange
        out.data.withUnsafeMutableBufferPointer { o in
            modelOutput.data.withUnsafeBufferPointer { m in
                sample.data.withUnsafeBufferPointer { s in
                    for k in 0..<o.count {
                        var x0: Float, eps: Float
                        if v {
                            x0 = sqrtA * s[k] - sqrtB * m[k]
                            eps = sqrtA * m[k] + sqrtB * s[k]
                        } else {
                            x0 = (s[k] - sqrtB * m[k]) / sqrtA
                            eps = m[k]
                        }
                        if clip { x0 = min(max(x0, -r), r) }
                        o[k] = sqrtAPrev * x0 + sqrtDir * eps
                    }
                }
            }
        }
        return out
    }
}
