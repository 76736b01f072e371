import Foundation
import Testing
@testable import Models
import Tensor

/// Shared access to the Stable Diffusion fixtures written by `Tools/make_sd_fixtures.py`.
enum SDFixtures {
    static func url(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: "Fixtures/sd/\(name)", withExtension: nil), "missing fixture sd/\(name)")
    }

    static func json(_ name: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(contentsOf: url(name))) as? [String: Any])
    }

    static func tensors(_ name: String) throws -> SafetensorsFile { try SafetensorsFile(url: url(name)) }

    /// The committed tiny diffusers folder (`Examples/models/tiny-sd`), found from this file's path.
    static var tinySD: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Examples/models/tiny-sd")
    }

    static func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Float {
        guard a.shape == b.shape else { return .infinity }
        return zip(a.data, b.data).map { abs($0 - $1) }.max() ?? 0
    }
}

@Suite("torch-compatible noise")
struct SDNoiseTests {
    /// Exact: every value must have the same bits as torch's.
    @Test("randn reproduces torch.randn bit for bit for several shapes and seeds")
    func randnMatchesTorch() throws {
        let meta = try SDFixtures.json("noise.json")
        let expected = try SDFixtures.tensors("noise.safetensors")
        let cases = try #require(meta["cases"] as? [[String: Any]])
        #expect(cases.count >= 6)
        for c in cases {
            let name = try #require(c["name"] as? String)
            let shape = try #require(c["shape"] as? [Int])
            let seed = try #require((c["seed"] as? NSNumber)?.uint64Value)
            var g = TorchGenerator(seed: seed)
            let mine = try g.randn(shape: shape)
            let ref = try expected.tensor(named: name)
            let mismatches = zip(mine.data, ref.data).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(mine.shape == ref.shape)
            #expect(mismatches == 0, "\(name): \(mismatches) of \(ref.count) values differ")
        }
    }

    @Test("successive draws share the generator state, including the scalar path's cached value")
    func chainedDraws() throws {
        let expected = try SDFixtures.tensors("noise.safetensors")
        var g = TorchGenerator(seed: 11)
        for (name, n) in [("chain_a", 3), ("chain_b", 20), ("chain_c", 5)] {
            let mine = g.randn(count: n)
            let ref = try expected.tensor(named: name)
            #expect(mine.map(\.bitPattern) == ref.data.map(\.bitPattern), "\(name) differs")
        }
    }
}

@Suite("schedulers vs diffusers")
struct SDSchedulerTests {
    /// Schedules are computed in float32 like torch; updates may differ in rounding order.
    /// Tolerance: 2e-5 · max(1, |x|) on every latent value after each step.
    static let tolerance: Float = 2e-5

    static func variants() throws -> [[String: Any]] {
        try #require(SDFixtures.json("schedulers.json")["variants"] as? [[String: Any]])
    }

    @Test("timesteps, sigmas and a sequence of steps match diffusers for every variant")
    func stepsMatch() throws {
        let tensors = try SDFixtures.tensors("schedulers.safetensors")
        let variants = try Self.variants()
        #expect(variants.count >= 10)
        for v in variants {
            let name = try #require(v["name"] as? String)
            let kindName = try #require(v["kind"] as? String)
            let kind = try #require(SchedulerKind(rawValue: kindName))
            let object = try #require(v["config"] as? [String: Any])
            let config = try SchedulerConfig(object: object, source: name)
            let steps = try #require(v["steps"] as? Int)
            var scheduler = try kind.make(config: config, steps: steps)
            let timesteps = try #require(v["timesteps"] as? [Double])
            #expect(scheduler.timesteps.map(Double.init).count == timesteps.count, "\(name): timestep count")
            for (a, b) in zip(scheduler.timesteps, timesteps) {
                #expect(abs(Double(a) - b) < 1e-3, "\(name): timesteps \(scheduler.timesteps) vs \(timesteps)")
            }
            let sigma = try #require(v["init_noise_sigma"] as? Double)
            #expect(abs(Double(scheduler.initNoiseSigma) - sigma) <= 1e-5 * max(1, sigma), "\(name): init_noise_sigma")
            if let sigmas = v["sigmas"] as? [Double] {
                let mine = (scheduler as? EulerDiscreteScheduler)?.sigmas ?? (scheduler as? DPMSolverMultistepScheduler)?.sigmas ?? []
                #expect(mine.count == sigmas.count, "\(name): sigma count")
                for (a, b) in zip(mine, sigmas) { #expect(abs(Double(a) - b) <= 1e-5 * max(1, b), "\(name): sigmas") }
            }
            var sample = try tensors.tensor(named: "\(name).sample0")
            for i in 0..<timesteps.count {
                let scaled = scheduler.scaleModelInput(sample, step: i)
                let refScaled = try tensors.tensor(named: "\(name).scaled\(i)")
                let worstScaled = zip(scaled.data, refScaled.data).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
                #expect(worstScaled <= Self.tolerance, "\(name) step \(i): scaled input relative |Δ| = \(worstScaled)")
                // Feed diffusers' own output so errors do not compound across steps.
                let output = try tensors.tensor(named: "\(name).output\(i)")
                sample = try scheduler.step(modelOutput: output, step: i, sample: sample)
                let ref = try tensors.tensor(named: "\(name).prev\(i)")
                let worst = zip(sample.data, ref.data).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? .infinity
                #expect(sample.shape == ref.shape)
                #expect(worst <= Self.tolerance, "\(name) step \(i): relative |Δ| = \(worst)")
            }
        }
    }

    @Test("unsupported settings are refused naming the field")
    func unsupported() throws {
        let cases: [(SchedulerKind, [String: Any], String)] = [
            (.pndm, ["beta_schedule": "scaled_linear"], "skip_prk_steps"),
            (.ddim, ["beta_schedule": "cosine_warp"], "beta_schedule"),
            (.euler, ["use_karras_sigmas": true], "use_karras_sigmas"),
            (.dpmSolverMultistep, ["algorithm_type": "sde-dpmsolver++"], "algorithm_type"),
            (.ddim, ["prediction_type": "sample"], "prediction_type"),
            (.ddim, ["timestep_spacing": "random"], "timestep_spacing"),
            (.ddim, ["num_train_timesteps": "many"], "num_train_timesteps"),
        ]
        for (kind, object, field) in cases {
            let error = #expect(throws: ModelError.self) {
                _ = try kind.make(config: try SchedulerConfig(object: object, source: "test.json"), steps: 10)
            }
            #expect(error?.field == field, "\(kind): \(String(describing: error))")
            #expect(error?.description.contains("test.json") == true)
        }
    }
}
