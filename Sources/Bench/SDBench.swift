import Foundation
import Models
import Tensor

/// `storyloom bench sd`: the SD v1.5 UNet and VAE, built from config with random weights (no
/// download), and the committed StoryWorld UNet (`Examples/StoryWorld/models/sd`), timed beside
/// diffusers/PyTorch on the same weights in the same invocation.
///
/// Swift draws the SD v1.5 weights (`RandomWeightSource`), writes them as an fp16 diffusers folder
/// (`unet/`, `vae/`: config.json + diffusion_pytorch_model.safetensors — both sides widen to
/// float32 on load), and `Tools/bench_sd_reference.py` loads that folder with diffusers. Rows:
/// one UNet step (batch 2, as with guidance) at 32×32 and 64×64 latents, one VAE decode of a
/// 64×64 latent, and one StoryWorld UNet step at 16×16 latents (batch 2; the size its workflows
/// use, so tiny products). Each row prints seconds (best of `reps`), the ratio reference/Storyloom,
/// achieved GFLOP/s, and peak resident memory (VmHWM) of each process. Both sides are checked to
/// compute the same function (max |Δ| of the 32×32 and of the StoryWorld UNet output).
public enum SDBench {
    /// Where the StoryWorld UNet is, relative to the repository root (the benchmark's working directory).
    static let storyWorldUNet = "Examples/StoryWorld/models/sd/unet"
    /// Images generated together in the pipeline row: the quickstart's batch (`batch_size: 8`).
    static let pipelineItems = 8

    /// Runs the benchmark with `threads` compute threads; `quick` times once instead of three times;
    /// `storyWorldOnly` skips the SD v1.5 rows (which take minutes).
    public static func run(threads: Int, quick: Bool, storyWorldOnly: Bool = false) throws -> BenchReport {
        Threads.set(threads)
        let reps = quick ? 1 : 3
        var report = BenchReport()
        report.notes.append("threads=\(Threads.count) \(openBLASEnvironmentNote()) reps=\(reps) (best of), float32")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("storyloom-sdbench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }

        func time(_ body: () throws -> Void) rethrows -> Double {
            var best = Double.infinity
            for _ in 0..<reps {
                let start = DispatchTime.now().uptimeNanoseconds
                try body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
            return best
        }

        // Inputs and outputs shared with the reference through files, so both sides see the same numbers.
        var inputs: [String: Tensor] = [:]
        var checks: [String: Tensor] = [:]
        var ours: [(name: String, seconds: Double, flops: Double)] = []
        var generator = TorchGenerator(seed: 0)
        if !storyWorldOnly {
            let (unet, vae) = try buildModels(writingTo: dir)
            let promptEmbeddings = try generator.randn(shape: [2, 77, unet.config.crossAttentionDim])
            let small = try generator.randn(shape: [2, 4, 32, 32])
            let large = try generator.randn(shape: [2, 4, 64, 64])
            let latent = try generator.randn(shape: [1, 4, 64, 64])
            inputs = ["prompt_embeddings": promptEmbeddings, "small": small, "large": large, "latent": latent]
            checks["unet_small"] = try unet.forward(small, timesteps: [999], promptEmbeddings: promptEmbeddings)
            ours.append(("UNet step 32×32 latents, batch 2",
                         try time { _ = try unet.forward(small, timesteps: [999], promptEmbeddings: promptEmbeddings) },
                         unet.flops(batch: 2, height: 32, width: 32, promptLength: 77)))
            ours.append(("UNet step 64×64 latents, batch 2",
                         try time { _ = try unet.forward(large, timesteps: [999], promptEmbeddings: promptEmbeddings) },
                         unet.flops(batch: 2, height: 64, width: 64, promptLength: 77)))
            ours.append(("VAE decode 64×64 latents", try time { _ = try vae.decode(latent) }, vae.decodeFlops(height: 64, width: 64)))
        }
        let storyWorldFolder = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(storyWorldUNet)
        var storyWorld: URL?
        if FileManager.default.fileExists(atPath: storyWorldFolder.appendingPathComponent("config.json").path) {
            let unet = try UNet2DConditionModel.load(from: storyWorldFolder)
            let latents = try generator.randn(shape: [2, unet.config.inChannels, 16, 16])
            let prompt = try generator.randn(shape: [2, 77, unet.config.crossAttentionDim])
            inputs["storyworld_latents"] = latents
            inputs["storyworld_prompt"] = prompt
            checks["storyworld_unet"] = try unet.forward(latents, timesteps: [999], promptEmbeddings: prompt)
            // Tiny products: enough repetitions that a millisecond-scale step is not timer noise.
            let inner = 10
            let seconds = try time { for _ in 0..<inner { _ = try unet.forward(latents, timesteps: [999], promptEmbeddings: prompt) } } / Double(inner)
            ours.append(("StoryWorld UNet step 16×16 latents, batch 2", seconds, unet.flops(batch: 2, height: 16, width: 16, promptLength: 77)))
            storyWorld = storyWorldFolder
            // The quickstart's generation step: the whole pipeline (DDIM 25, guidance 4, 64×64) for a batch of
            // prompt embeddings denoised together, per image; both sides draw each item's noise from its own seed.
            let pipeline = try StableDiffusionPipeline(folder: storyWorldFolder.deletingLastPathComponent())
            let items = Self.pipelineItems
            let embeddings = try generator.randn(shape: [items, 77, pipeline.unet.config.crossAttentionDim])
            inputs["storyworld_pipeline_prompt"] = embeddings
            let perItem = try (0..<items).map { try Tensor(shape: [77, pipeline.unet.config.crossAttentionDim],
                                                           data: Array(embeddings.data[($0 * embeddings.count / items)..<(($0 + 1) * embeddings.count / items)])) }
            let options = GenerationOptions(steps: 25, guidance: 4, scheduler: .ddim)
            let seeds = (0..<items).map { UInt64($0 + 1) }
            var images: [Tensor] = []
            let pipelineSeconds = try time { images = try pipeline.generate(promptEmbeddings: perItem, seeds: seeds, options: options) }
            checks["storyworld_pipeline_images"] = try Tensor(shape: [items] + images[0].shape.dropFirst(), data: images.flatMap(\.data))
            let unetFlops = unet.flops(batch: 2 * items, height: 16, width: 16, promptLength: 77) * 25
            ours.append(("StoryWorld generation per image (DDIM 25, guidance 4, 64×64, \(items) together)", pipelineSeconds / Double(items),
                         (unetFlops + pipeline.vae.decodeFlops(height: 16, width: 16) * Double(items)) / Double(items)))
        } else {
            report.notes.append("StoryWorld UNet row skipped: no \(storyWorldUNet)/config.json under the current directory (run from the repository root)")
        }
        try SafetensorsWriter.write(inputs, to: dir.appendingPathComponent("inputs.safetensors"))
        try SafetensorsWriter.write(checks, to: dir.appendingPathComponent("check.safetensors"))
        let ourPeak = peakResidentMB()

        var reference: [String: Any]?
        if let python = PyTorchReference.python(for: "bench_sd_reference.py") {
            var arguments = ["--folder", dir.path, "--threads", String(Threads.count), "--reps", String(reps)]
            if let storyWorld { arguments += ["--storyworld-unet", storyWorld.path] }
            if storyWorldOnly { arguments.append("--only-storyworld") }
            do {
                reference = try PyTorchReference.run("bench_sd_reference.py", python: python, arguments: arguments, scratch: dir)
            } catch {
                report.notes.append("PyTorch reference failed: \(error)")
            }
        } else {
            report.notes.append("PyTorch reference not run: no Python with torch + diffusers found (set STORYLOOM_PYTHON, or run from the repository root with .venv/bin/python) or Tools/bench_sd_reference.py is missing; Storyloom's side alone")
        }
        let refSeconds = reference?["seconds"] as? [Double]
        let refPeak = reference?["peak_mb"] as? Double
        for (i, row) in ours.enumerated() {
            var extra: [String: Double] = ["GFLOP/s": row.flops / row.seconds / 1e9, "peak MB": ourPeak]
            if let refPeak { extra["ref peak MB"] = refPeak }
            report.rows.append(BenchRow(name: row.name, storyloom_s: row.seconds,
                                        reference_s: refSeconds.flatMap { i < $0.count ? $0[i] : nil }, extra: extra))
        }
        for (key, output, what) in [("check_max_abs_diff", "unet_small", "UNet 32×32"), ("storyworld_max_abs_diff", "storyworld_unet", "StoryWorld UNet 16×16"),
                                    ("storyworld_pipeline_max_abs_diff", "storyworld_pipeline_images", "StoryWorld generation, 8 images in [0, 1]")] {
            guard let diff = reference?[key] as? Double, let out = checks[output] else { continue }
            report.notes.append(String(format: "same function: %@ output max |Δ| vs diffusers = %.2e (output max |x| %.2f)",
                                       what, diff, out.data.map(abs).max() ?? 0))
        }
        if let reference {
            report.notes.append("reference: torch \(reference["torch"] ?? "?"), diffusers \(reference["diffusers"] ?? "?"), threads \(reference["threads"] ?? "?"), attention \(reference["attention"] ?? "?")")
        }
        report.notes.append("ratio = reference_s / storyloom_s (above 1: Storyloom faster); GFLOP/s counts 2 per multiply-add of convolutions, linears and attention; peak MB = VmHWM of each process (Storyloom's includes every model it built)")
        return report
    }
    /// SD v1.5's UNet and VAE with random weights, written as an fp16 diffusers folder under `dir`.
    static func buildModels(writingTo dir: URL) throws -> (UNet2DConditionModel, AutoencoderKL) {
        let unetSource = RandomWeightSource(seed: 1)
        let unet = try UNet2DConditionModel(config: UNetConfig(), reader: unetSource)
        var vaeConfig = VAEConfig()
        vaeConfig.sampleSize = 512
        let vaeSource = RandomWeightSource(seed: 2)
        let vae = try AutoencoderKL(config: vaeConfig, reader: vaeSource)
        for (name, config, source) in [("unet", unet.config.jsonObject, unetSource), ("vae", vaeConfig.jsonObject, vaeSource)] {
            let folder = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
                .write(to: folder.appendingPathComponent("config.json"))
            try SafetensorsWriter.write(source.recorded, to: folder.appendingPathComponent("diffusion_pytorch_model.safetensors"), as: .f16)
        }
        return (unet, vae)
    }

    /// The peak resident set of this process in MB (`VmHWM` in /proc/self/status), 0 where unavailable.
    static func peakResidentMB() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kb / 1024
        }
        return 0
    }


}
