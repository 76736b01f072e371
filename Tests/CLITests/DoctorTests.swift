import Foundation
import Testing

@Suite struct DoctorTests {
    @Test("doctor names OpenBLAS's core and who chose it; a user's OPENBLAS_CORETYPE is respected, not re-executed")
    func doctorNamesTheCore() throws {
        let cli = try CLI()
        let plain = try cli.run(["doctor"])
        #expect(plain.status == 0, "\(plain.stderr)")
        let core = plain.stdout.split(separator: "\n").first { $0.hasPrefix("core:") }
            .map { $0.dropFirst("core:".count).trimmingCharacters(in: .whitespaces) }
        #expect(core.map { !$0.isEmpty && $0 != "unknown" } == true, "\(plain.stdout)")
        #expect(plain.stdout.contains("OpenBLAS: OpenBLAS "), "\(plain.stdout)")
        #expect(plain.stdout.contains("avx2 "), "\(plain.stdout)")

        // Only this child's environment: the user's choice wins even when it is the generic core.
        let chosen = try cli.run(["doctor"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(chosen.status == 0, "\(chosen.stderr)")
        #expect(chosen.stdout.contains("core:     Prescott"), "\(chosen.stdout)")
        #expect(chosen.stdout.contains("OPENBLAS_CORETYPE=Prescott from the environment, respected"), "\(chosen.stdout)")
        #expect(!chosen.stdout.contains("to set OPENBLAS_CORETYPE"), "\(chosen.stdout)")

        // The idle workers' spin: chosen once on a multi-core machine, and a user's value respected.
        if ProcessInfo.processInfo.activeProcessorCount > 1 {
            #expect(plain.stdout.contains("OPENBLAS_THREAD_TIMEOUT=20, set by Storyloom"), "\(plain.stdout)")
            #expect(plain.stdout.contains("re-executed: yes, to set OPENBLAS_THREAD_TIMEOUT"), "\(plain.stdout)")
        }
        let both = try cli.run(["doctor"], environment: ["OPENBLAS_CORETYPE": "Zen", "OPENBLAS_THREAD_TIMEOUT": "26"])
        #expect(both.stdout.contains("OPENBLAS_THREAD_TIMEOUT=26 from the environment, respected"), "\(both.stdout)")
        #expect(both.stdout.contains("re-executed: no"), "\(both.stdout)")
    }

    @Test("doctor names the heap's policy: freed blocks reused unless the user set malloc's own variables")
    func doctorNamesTheHeapPolicy() throws {
        let cli = try CLI()
        let plain = try cli.run(["doctor"])
        #expect(plain.stdout.contains("heap: freed blocks reused"), "\(plain.stdout)")
        let user = try cli.run(["doctor"], environment: ["MALLOC_ARENA_MAX": "2"])
        #expect(user.stdout.contains("heap: MALLOC_ARENA_MAX=2 from the environment, respected"), "\(user.stdout)")
    }

    @Test("doctor names what runs the Winograd products, and STORYLOOM_WINOGRAD_PRODUCTS=openblas is respected")
    func doctorNamesTheWinogradProducts() throws {
        let cli = try CLI()
        let plain = try cli.run(["doctor"])
        #expect(plain.stdout.contains("winograd products: "), "\(plain.stdout)")
        // Storyloom's AVX-512 kernel where the CPU has AVX-512F, its AVX2 one where it has AVX2 + FMA only
        // (doctor's cpu line says which it has).
        let avx512 = plain.stdout.contains("avx512f yes")
        let avx2 = plain.stdout.contains("avx2 yes, fma yes")
        #expect(plain.stdout.contains("Storyloom's AVX-512 kernel") == avx512, "\(plain.stdout)")
        #expect(plain.stdout.contains("Storyloom's AVX2 kernel from") == (avx2 && !avx512), "\(plain.stdout)")
        let kept = try cli.run(["doctor"], environment: ["STORYLOOM_WINOGRAD_PRODUCTS": "openblas"])
        #expect(kept.stdout.contains("winograd products: OpenBLAS"), "\(kept.stdout)")
    }

    @Test("doctor names what runs linear's prefill products, and STORYLOOM_LINEAR_PRODUCTS=openblas is respected")
    func doctorNamesTheLinearProducts() throws {
        let cli = try CLI()
        let plain = try cli.run(["doctor"])
        let avx2 = plain.stdout.contains("avx2 yes, fma yes")
        #expect(plain.stdout.contains("linear products: Storyloom's AVX2 kernel") == avx2, "\(plain.stdout)")
        #expect(plain.stdout.contains("linear products: OpenBLAS (no AVX2 + FMA") == !avx2, "\(plain.stdout)")
        let kept = try cli.run(["doctor"], environment: ["STORYLOOM_LINEAR_PRODUCTS": "openblas"])
        #expect(kept.stdout.contains("linear products: OpenBLAS"), "\(kept.stdout)")
        #expect(!kept.stdout.contains("linear products: Storyloom's"), "\(kept.stdout)")
    }

    @Test("doctor names what runs the convolution products, and STORYLOOM_CONV_PRODUCTS=openblas is respected")
    func doctorNamesTheConvolutionProducts() throws {
        let cli = try CLI()
        let plain = try cli.run(["doctor"])
        #expect(plain.stdout.contains("convolution products: "), "\(plain.stdout)")
        // Storyloom's kernels only with AVX-512F and OpenBLAS on kernels without it (doctor's kernels line names them).
        let avx512 = plain.stdout.contains("avx512f yes")
        let core = plain.stdout.split(separator: "\n").first { $0.hasPrefix("core:") }.map { $0.lowercased() } ?? ""
        let ownAVX512 = ["skylakex", "cooperlake", "sapphirerapids"].contains { core.contains($0) }
        if !avx512 { #expect(plain.stdout.contains("convolution products: OpenBLAS (no AVX-512F"), "\(plain.stdout)") }
        if avx512 && !ownAVX512 { #expect(plain.stdout.contains("convolution products: Storyloom's AVX-512 kernels"), "\(plain.stdout)") }
        let kept = try cli.run(["doctor"], environment: ["STORYLOOM_CONV_PRODUCTS": "openblas"])
        #expect(kept.stdout.contains("convolution products: OpenBLAS"), "\(kept.stdout)")
        #expect(!kept.stdout.contains("convolution products: Storyloom's"), "\(kept.stdout)")
    }
}
