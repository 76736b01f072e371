import Tensor

/// PNDM in its PLMS form (`skip_prk_steps: true`, SD v1.x's default scheduler), matching
/// diffusers' `PNDMScheduler` (0.17 – 0.42).
///
/// Supported: `prediction_type` epsilon and v_prediction; `timestep_spacing` leading (default),
/// trailing, linspace; `steps_offset`; `set_alpha_to_one` (default false); the usual beta
/// schedules. Not supported: the Runge–Kutta warm-up (`skip_prk_steps: false`, the class
/// default — a config without the key is refused, naming it), thresholding.
///
/// As in diffusers the timestep list repeats the second-to-last timestep: the first two model
/// outputs are combined (`(ε₀ + ε₁)/2`) at the starting timestep, so `steps` inference steps
/// call the UNet `steps + 1` times.
public struct PNDMScheduler: DiffusionScheduler {
    public let schedule: NoiseSchedule
    public let timesteps: [Float]
    public var initNoiseSigma: Float { 1 }
    let integerTimesteps: [Int]
    let finalAlphaCumprod: Float
    let stepRatio: Int
    var ets: [Tensor] = []
    var counter = 0
    var currentSample: Tensor?

    public init(config c: SchedulerConfig, steps: Int) throws {
        try c.rejectUnsupported(scheduler: "PNDM")
        guard c.skipPrkSteps == true else {
            throw c.fail("skip_prk_steps", "must be true: only the PLMS form of PNDM is implemented (the key is \(c.skipPrkSteps == nil ? "absent, so PNDM's default false applies" : "false"))")
        }
        schedule = try NoiseSchedule(c)
        let n = schedule.numTrainTimesteps
        guard steps <= n else { throw c.fail("num_train_timesteps", "\(steps) inference steps exceed \(n) training steps") }
        // Ascending as PNDM builds them, then PLMS order: [..., t₋₂, t₋₂, t₋₁] reversed.
        let ascending = try spacedTimesteps(spacing: c.timestepSpacing ?? "leading", steps: steps, trainSteps: n,
                                             offset: c.stepsOffset ?? 0, config: c).reversed().map { $0 }
        if let bad = ascending.first(where: { $0 < 0 || $0 >= n }) {
            throw c.fail("steps_offset", "gives timestep \(bad) outside 0..<\(n)")
        }
        var plms = Array(ascending.dropLast())
        if ascending.count >= 2 { plms.append(ascending[ascending.count - 2]) }
        plms.append(ascending[ascending.count - 1])
        integerTimesteps = plms.reversed()
        timesteps = integerTimesteps.map(Float.init)
        finalAlphaCumprod = (c.setAlphaToOne ?? false) ? 1 : schedule.alphasCumprod[0]
        stepRatio = n / steps
    }

    public func scaleModelInput(_ sample: Tensor, step i: Int) -> Tensor { sample }

    public mutating func step(modelOutput: Tensor, step i: Int, sample: Tensor) throws -> Tensor {
        try checkSameShape(modelOutput, sample, "PNDM step")
        var timestep = integerTimesteps[i]
        var prevTimestep = timestep - stepRatio
        if counter != 1 {
            ets = Array(ets.suffix(3))
            ets.append(modelOutput)
        } else {
            prevTimestep = timestep
            timestep += stepRatio
        }
        var sample = sample
        let output: Tensor
        if ets.count == 1 && counter == 0 {
            output = modelOutput
            currentSample = sample
        } else if ets.count == 1 && counter == 1 {
            output = combine([(0.5, modelOutput), (0.5, ets[0])])
            sample = currentSample ?? sample
            currentSample = nil
        } else if ets.count == 2 {
            output = combine([(1.5, ets[1]), (-0.5, ets[0])])
        } else if ets.count == 3 {
            output = combine([(23.0 / 12, ets[2]), (-16.0 / 12, ets[1]), (5.0 / 12, ets[0])])
        } else {
            output = combine([(55.0 / 24, ets[3]), (-59.0 / 24, ets[2]), (37.0 / 24, ets[1]), (-9.0 / 24, ets[0])])
        }
        let prev = previousSample(sample, timestep: timestep, previous: prevTimestep, output: output)
        counter += 1
        return prev
    }

    /// Formula (9) of the PNDM paper: x_{t−δ} from x_t and the combined ε.
    func previousSample(_ sample: Tensor, timestep t: Int, previous p: Int, output: Tensor) -> Tensor {
        let aT = schedule.alphasCumprod[t]
        let aPrev = p >= 0 ? schedule.alphasCumprod[p] : finalAlphaCumprod
        let bT = 1 - aT, bPrev = 1 - aPrev
        let sampleCoeff = (aPrev / aT).squareRoot()
        let denom = aT * bPrev.squareRoot() + (aT * bT * aPrev).squareRoot()
        let diff = aPrev - aT
        let v = schedule.prediction == .vPrediction
        let sqrtA = aT.squareRoot(), sqrtB = bT.squareRoot()
        var out = sample
        out.data.withUnsafeMutableBufferPointer { o in
            output.data.withUnsafeBufferPointer { m in
                sample.data.withUnsafeBufferPointer { s in
                    for k in 0..<o.count {
                        let eps = v ? sqrtA * m[k] + sqrtB * s[k] : m[k]
                        o[k] = sampleCoeff * s[k] - diff * eps / denom
                    }
                }
            }
        }
        return out
    }
}
