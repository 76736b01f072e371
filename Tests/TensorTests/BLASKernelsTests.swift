import Testing
@testable import Tensor

/// The kernel decision as a pure function: environment, OpenBLAS's core and config, CPU flags.
@Suite("OpenBLAS kernel choice")
struct BLASKernelsTests {
    static let dynamic = "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Prescott MAX_THREADS=64"
    static let avx2 = CPUFeatures(avx2: true, fma: true)

    func decide(_ env: [String: String] = [:], core: String = "Prescott", config: String = dynamic,
                cpu: CPUFeatures = avx2) -> BLASKernels.Decision {
        BLASKernels.decide(environment: env, coreName: core, config: config, cpu: cpu)
    }

    @Test func genericCoreOnAVX2CPUReexecutesWithHaswell() {
        #expect(decide() == .reexecute(coretype: "Haswell"))
        #expect(decide(core: "Core2") == .reexecute(coretype: "Haswell"))
        #expect(decide(core: "Sandybridge") == .reexecute(coretype: "Haswell"))
    }

    @Test func theUsersCoretypeIsRespected() {
        #expect(decide(["OPENBLAS_CORETYPE": "SkylakeX"]) == .userChoice("SkylakeX"))
        // Even a generic one: some kernels compute wrong results on some CPUs.
        #expect(decide(["OPENBLAS_CORETYPE": "Prescott"], core: "Prescott") == .userChoice("Prescott"))
        // An empty value is no choice.
        #expect(decide(["OPENBLAS_CORETYPE": ""]) == .reexecute(coretype: "Haswell"))
    }

    @Test func theReexecutedProcessNeverReexecutesAgain() {
        let env = ["OPENBLAS_CORETYPE": "Haswell", "STORYLOOM_BLAS_REEXEC": "Haswell"]
        #expect(decide(env, core: "Haswell") == .chosenByStoryloom("Haswell"))
        // Still generic after the exec (an OpenBLAS that ignores the variable): no loop.
        #expect(decide(env, core: "Prescott") == .chosenByStoryloom("Haswell"))
        #expect(decide(["STORYLOOM_BLAS_REEXEC": "Haswell"]) == .guardWithoutCoretype)
        // The user's own value differs from the guard's: it is the user's.
        #expect(decide(["OPENBLAS_CORETYPE": "Zen", "STORYLOOM_BLAS_REEXEC": "Haswell"], core: "Zen") == .userChoice("Zen"))
    }

    @Test func goodOrUnknownCoresAreKept() {
        for core in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "ARMV8", "NeoverseN1", "SomethingNewer"] {
            #expect(decide(core: core) == .keep, "\(core)")
        }
    }

    @Test func genericKernelsStayWhereTheCPUCannotDoBetter() {
        #expect(decide(cpu: CPUFeatures(avx2: false, fma: false)) == .cpuLacksAVX2FMA)
        #expect(decide(cpu: CPUFeatures(avx2: true, fma: false)) == .cpuLacksAVX2FMA)
        #expect(decide(cpu: CPUFeatures(x86_64: false, avx2: false, fma: false)) == .cpuLacksAVX2FMA)
    }

    @Test func aSingleCoreBuildIsNotReexecuted() {
        #expect(decide(config: "OpenBLAS 0.3.21 NO_LAPACKE NO_AFFINITY PRESCOTT MAX_THREADS=64") == .notDynamic)
    }

    @Test func theThreadTimeoutIsChosenOnceAndTheUsersIsRespected() {
        #expect(BLASKernels.decideThreadTimeout(environment: [:], cores: 2) == .set("20"))
        #expect(BLASKernels.decideThreadTimeout(environment: [:], cores: 1) == .singleCore)
        #expect(BLASKernels.decideThreadTimeout(environment: ["OPENBLAS_THREAD_TIMEOUT": "26"], cores: 2) == .userChoice("26"))
        // The re-executed process: set, with the guard equal to it, so no second exec.
        let chosen = ["OPENBLAS_THREAD_TIMEOUT": "20", "STORYLOOM_BLAS_THREAD_TIMEOUT": "20"]
        #expect(BLASKernels.decideThreadTimeout(environment: chosen, cores: 2) == .chosenByStoryloom("20"))
        #expect(BLASKernels.decideThreadTimeout(environment: ["OPENBLAS_THREAD_TIMEOUT": ""], cores: 2) == .set("20"))
    }

    @Test func theReportNamesTheCoreAndWhy() {
        let report = BLASKernels.report
        #expect(!report.coreName.isEmpty)
        #expect(report.lines.contains { $0.hasPrefix("core:") && $0.contains(report.coreName) })
        #expect(report.kernels.contains(report.coreName))
    }
}

@Suite("heap policy")
struct HeapPolicyTests {
    @Test("freed blocks are reused unless the user set glibc's malloc tunables or MALLOC_*_ variables")
    func decisions() {
        #expect(HeapPolicy.decide(environment: [:]) == .reuse)
        #expect(HeapPolicy.decide(environment: ["GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=1"]) == .reuse)
        #expect(HeapPolicy.decide(environment: ["GLIBC_TUNABLES": "glibc.malloc.mmap_max=4"])
                == .userChoice("GLIBC_TUNABLES=glibc.malloc.mmap_max=4"))
        #expect(HeapPolicy.decide(environment: ["MALLOC_TRIM_THRESHOLD_": "0"]) == .userChoice("MALLOC_TRIM_THRESHOLD_=0"))
    }
}
