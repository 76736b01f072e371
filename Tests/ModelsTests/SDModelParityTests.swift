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

    /// At 1 thread the batch runs as one; at 2 it is cut into one single-threaded half per thread.
    @Test("one UNet forward matches, as one batch and split over two threads", arguments: ["tiny", "b"], [1, 2])
    func unet(_ name: String, threads: Int) throws {
        let model = try UNet2DConditionModel.load(from: Self.unetFolder(name))
        let e = try SDFixtures.tensors("unet.safetensors")
        let sample = try e.tensor(named: "unet_\(name).sample")
        let timestep = try e.tensor(named: "unet_\(name).timestep").data
        let states = try e.tensor(named: "unet_\(name).encoder_hidden_states")
        try #require(threads == 1 || sample.shape[0] % threads == 0, "the fixture's batch \(sample.shape[0]) must split in \(threads)")
        let out = try Threads.withLocalCount(threads) { try model.forward(sample, timesteps: timestep, promptEmbeddings: states) }
        let ref = try e.tensor(named: "unet_\(name).output")
        let d = SDFixtures.maxAbsDifference(out, ref)
        #expect(out.shape == ref.shape)
        #expect(d <= Self.tolerance, "UNet \(name): max |Δ| = \(d) (output scale \(ref.data.map(abs).max() ?? 0))")
    }

    /// The tiny models are fp16 exports: kept as stored, every kernel and matrix is widened per tile
    /// inside the products; widened on load, the float32 path runs. Same function, so 1e-5.
    @Test("fp16 UNet and VAE kept as stored equal the same files widened on load")
    func storedHalfEqualsWidened() throws {
        let unet = try UNet2DConditionModel.load(from: Self.unetFolder("tiny"))
        let unetWide = try UNet2DConditionModel.load(from: Self.unetFolder("tiny"), precision: .float32)
        #expect(unet.convIn.weight.dtype == .f16 && unetWide.convIn.weight.dtype == .f32)
        let e = try SDFixtures.tensors("unet.safetensors")
        let sample = try e.tensor(named: "unet_tiny.sample"), states = try e.tensor(named: "unet_tiny.encoder_hidden_states")
        let timestep = try e.tensor(named: "unet_tiny.timestep").data
        let du = SDFixtures.maxAbsDifference(try unet.forward(sample, timesteps: timestep, promptEmbeddings: states),
                                             try unetWide.forward(sample, timesteps: timestep, promptEmbeddings: states))
        #expect(du <= 1e-5, "UNet stored f16 vs widened: max |Δ| = \(du)")
        let vae = try AutoencoderKL.load(from: Self.vaeFolder("tiny"))
        let vaeWide = try AutoencoderKL.load(from: Self.vaeFolder("tiny"), precision: .float32)
        let latents = try SDFixtures.tensors("vae.safetensors").tensor(named: "vae_tiny.latents")
        let dv = SDFixtures.maxAbsDifference(try vae.decode(latents), try vaeWide.decode(latents))
        #expect(dv <= 1e-5, "VAE stored f16 vs widened: max |Δ| = \(dv)")
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
