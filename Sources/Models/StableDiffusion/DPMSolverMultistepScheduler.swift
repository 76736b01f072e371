import Foundation
import Tensor

/// DPM-Solver++(2M) (Lu et al. 2022), matching diffusers' `DPMSolverMultistepScheduler`
/// (0.17 – 0.42) with `algorithm_type: dpmsolver++`, `solver_order: 2`.
///
/// Supported: `prediction_type` epsilon and v_prediction; `solver_type` midpoint (default) or
/// heun; `timestep_spacing` linspace (default), leading, trailing; `lower_order_final`
/// (default true: first-order last step below 15 steps), `euler_at_final`, `final_sigmas_type`
/// zero (default — the last step is then first order) or sigma_min; `steps_offset`.
/// Not supported: `dpmsolver` / SDE variants, `solver_order` 1 or 3, Karras / Lu / exponential
/// sigmas, `lambda_min_clipped`, thresholding, learned variance.
public struct DPMSolverMultistepScheduler: DiffusionScheduler {
    public let schedule: NoiseSchedule
    public let timesteps: [Float]
    /// σ of each step plus the final σ, float32.
    public let sigmas: [Float]
    public var initNoiseSigma: Float { 1 }
    let heun: Bool
    let lowerOrderFinal: Bool
    let eulerAtFinal: Bool
    let finalZero: Bool
    var previousOutput: Tensor?
    var lowerOrderNums = 0

    public init(config c: SchedulerConfig, steps: Int) throws {
        try c.rejectUnsupported(scheduler: "DPM-Solver++")
        if let a = c.algorithmType, a != "dpmsolver++" { throw c.fail("algorithm_type", "'\(a)' is not supported (dpmsolver++)") }
        if let o = c.solverOrder, o != 2 { throw c.fail("solver_order", "\(o) is not supported (2)") }
        if let l = c.lambdaMinClipped, l.isFinite { throw c.fail("lambda_min_clipped", "clipping (\(l)) is not supported") }
        let solver = c.solverType ?? "midpoint"
        guard solver == "midpoint" || solver == "heun" else { throw c.fail("solver_type", "'\(solver)' is not supported (midpoint, heun)") }
        heun = solver == "heun"
        lowerOrderFinal = c.lowerOrderFinal ?? true
        eulerAtFinal = c.eulerAtFinal ?? false
        schedule = try NoiseSchedule(c)
        let n = schedule.numTrainTimesteps
        let ints: [Int]
        switch c.timestepSpacing ?? "linspace" {
        case "linspace":
            ints = Array(numpyLinspace(0, Double(n - 1), steps + 1).map { Int($0.rounded(.toNearestOrEven)) }.reversed().dropLast())
        case "leading":
            let ratio = n / (steps + 1)
            ints = Array((0...steps).map { $0 * ratio + (c.stepsOffset ?? 0) }.reversed().dropLast())
        case "trailing":
            let ratio = Double(n) / Double(steps)
            ints = numpyArangeDown(Double(n), 0, -ratio).map { Int($0.rounded(.toNearestOrEven)) - 1 }
        case let other:
            throw c.fail("timestep_spacing", "'\(other)' is not supported (linspace, leading, trailing)")
        }
        if let bad = ints.first(where: { $0 < 0 || $0 >= n }) { throw c.fail("steps_offset", "gives timestep \(bad) outside 0..<\(n)") }
        let train = schedule.trainSigmas
        var s = ints.map { Float(numpyInterp(Double($0), train)) }
        switch c.finalSigmasType ?? "zero" {
        case "zero": s.append(0); finalZero = true
        case "sigma_min": s.append(train[0]); finalZero = false
        case let other: throw c.fail("final_sigmas_type", "'\(other)' is not supported (zero, sigma_min)")
        }
        sigmas = s
        timesteps = ints.map(Float.init)
    }

    public func scaleModelInput(_ sample: Tensor, step i: Int) -> Tensor { sample }

    /// (α_t, σ_t) of a Karras σ: `α = 1/sqrt(σ²+1)`, `σ_t = σ·α`.
    static func alphaSigma(_ sigma: Float) -> (Float, Float) {
        let a = 1 / (sigma * sigma + 1).squareRoot()
        return (a, sigma * a)
    }

    public mutating func step(modelOutput: Tensor, step i: Int, sample: Tensor) throws -> Tensor {
        try checkSameShape(modelOutput, sample, "DPM-Solver++ step")
        let count = timesteps.count
        let lowerFinal = i == count - 1 && (eulerAtFinal || (lowerOrderFinal && count < 15) || finalZero)
        let lowerSecond = i == count - 2 && lowerOrderFinal && count < 15
        _ = lowerSecond   // with solver_order 2 the second-order update is used either way
        // Convert the model output to the x₀ prediction.
        let (alphaS0, sigmaS0) = Self.alphaSigma(sigmas[i])
        let v = schedule.prediction == .vPrediction
        var x0 = modelOutput
        x0.data.withUnsafeMutableBufferPointer { o in
            sample.data.withUnsafeBufferPointer { s in
                for k in 0..<o.count { o[k] = v ? alphaS0 * s[k] - sigmaS0 * o[k] : (s[k] - sigmaS0 * o[k]) / alphaS0 }
            }
        }
        let (alphaT, sigmaT) = Self.alphaSigma(sigmas[i + 1])
        let lambdaT = log(alphaT) - log(sigmaT)
        let lambdaS0 = log(alphaS0) - log(sigmaS0)
        let h = lambdaT - lambdaS0
        let expm = exp(-h) - 1
        let result: Tensor
        if lowerOrderNums < 1 || lowerFinal || previousOutput == nil {
            result = combine([(sigmaT / sigmaS0, sample), (-(alphaT * expm), x0)])
        } else {
            let m1 = previousOutput!
            let (alphaS1, sigmaS1) = Self.alphaSigma(sigmas[i - 1])
            let lambdaS1 = log(alphaS1) - log(sigmaS1)
            let r0 = (lambdaS0 - lambdaS1) / h
            // D1 = (m0 − m1)/r0
            let d1Coeff: Float = heun ? alphaT * (expm / h + 1) : -0.5 * (alphaT * expm)
            result = combine([(sigmaT / sigmaS0, sample), (-(alphaT * expm), x0),
                              (d1Coeff / r0, x0), (-d1Coeff / r0, m1)])
        }
        previousOutput = x0
        if lowerOrderNums < 2 { lowerOrderNums += 1 }
        return result
    }
}
