#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CanonicalJSON
import Dispatch
import MilestoneModel

/// Room for a chunk's inspected lines, kept from chunk to chunk.
final class LineBuffer {
    @exclusivity(unchecked) private var buffer = UnsafeMutableBufferPointer<InspectedLine>.allocate(capacity: 0)

    /// `count` slots (their old contents are overwritten before they are read).
    func lines(_ count: Int) -> UnsafeMutableBufferPointer<InspectedLine> {
        if buffer.count < count {
            buffer.deallocate()
            buffer = .allocate(capacity: count + count / 4)
        }
        return UnsafeMutableBufferPointer(rebasing: buffer[..<count])
    }

    deinit { buffer.deallocate() }
}

/// A value handed to parallel workers that write disjoint parts of it.
struct UncheckedSendable<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}

func activeProcessorCount() -> Int {
    Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// One step of a two-stage pipeline: the `slices` tasks of `prepare` for
/// this chunk and, as one more task, `acceptPrevious` (the in-order stage for
/// the chunk before) share the cores; returns what the in-order stage returned.
func pipelineStep<R: Sendable>(slices: Int, acceptPrevious: (@Sendable () -> R?)?, prepare: @Sendable (Int) -> Void) -> R? {
    var result: R?
    withUnsafeMutablePointer(to: &result) { slot in
        let out = UncheckedSendable(slot)
        guard let accept = acceptPrevious else { return concurrentPerform(slices, prepare) }
        concurrentPerform(slices + 1) { t in
            if t == 0 { out.value.pointee = accept() } else { prepare(t - 1) }
        }
    }
    return result
}

func concurrentPerform(_ n: Int, _ body: @Sendable (Int) -> Void) {
    if n == 1 {
        body(0)
    } else {
        DispatchQueue.concurrentPerform(iterations: n, execute: body)
    }
}
