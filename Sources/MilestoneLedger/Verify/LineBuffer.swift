#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CanonicalJSON
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
