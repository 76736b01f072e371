import Foundation
import Testing
@testable import Models
import Tensor

/// UNet and VAE parity with diffusers on tiny random configs (`Tools/make_sd_fixtures.py`):
/// the fp16 `Examples/models/tiny-sd` models (computed in float32 on both sides) and the fp32
/// `unet_b` / `vae_b` variants (linear projections, per-block heads and depths, `freq_shift`,
/// legacy VAE attention names). Tolerance: 1e-4 absolute on float32 outputs.
@Suite("Stable Diffusion UNet and VAE parity with diffusers")
struct SDModelParityTests {
    static let tolerance: Float = 1e-4

    static func unetFolder(_ name: String) throws -> URL {
        name == "tiny" ? SDFixtures.tinySD.appendingPathComponent("unet") : try SDFixtures.url("unet_b")
    }

    static func vaeFolder(_ name: String) throws -> URL {
        name == "tiny" ? SDFixtures.tinySD.appendingPathComponent("vae") : try SDFixtures.url("vae_b")
    }

    @Test("one UNet forward matches", arguments: ["tiny", "b"])
    func unet(_ name: String) throws {
        let model = try UNet2DConditionModel.load(from: Self.unetFolder(name))
        let e = try SDFixtures.tensors("unet.safetensors")
        let sample = try e.tensor(named: "unet_\(name).sample")
        let timestep = try e.tensor(named: "unet_\(name).timestep").data
        let states = try e.tensor(named: "unet_\(name).encoder_hidden_states")
        let out = try model.forward(sample, timesteps: timestep, promptEmbeddings: states)
        let ref = try e.tensor(named: "unet_\(name).output")
        let d = SDFixtures.maxAbsDifference(out, ref)
        #expect(out.shape == ref.shape)
        #expect(d <= Self.tolerance, "UNet \(name): max |Δ| = \(d) (output scale \(ref.data.map(abs).max() ?? 0))")
    }

    @Test("VAE decode and encode match", arguments: ["tiny", "b"])
    func vae(_ name: String) throws {
        let model = try AutoencoderKL.load(from: Self.vaeFolder(name))
        let e = try SDFixtures.tensors("vae.safetensors")
        let decoded = try model.decode(e.tensor(named: "vae_\(name).latents"))
        let refDecoded = try e.tensor(named: "vae_\(name).decoded")
        #expect(decoded.shape == refDecoded.shape)
        let dd = SDFixtures.maxAbsDifference(decoded, refDecoded)
        #expect(dd <= Self.tolerance, "VAE \(name) decode: max |Δ| = \(dd)")
        let mean = try model.encode(e.tensor(named: "vae_\(name).image"))
        let refMean = try e.tensor(named: "vae_\(name).posterior_mean")
        #expect(mean.shape == refMean.shape)
        let de = SDFixtures.maxAbsDifference(mean, refMean)
        #expect(de <= Self.tolerance, "VAE \(name) encode: max |Δ| = \(de)")
        let scaled = try model.encode(e.tensor(named: "vae_\(name).image"), scaled: true)
        #expect(abs(scaled.data[0] - refMean.data[0] * model.config.scalingFactor) <= 1e-5)
    }
}
