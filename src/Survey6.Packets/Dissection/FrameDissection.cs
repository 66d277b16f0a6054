using Survey6.Packets.Capture;

namespace Survey6.Packets.Dissection;

/// <summary>Turns one frame read from a capture file into a <see cref="PacketRecord"/>.</summary>
public static class FrameDissection
{
    public static void Dissect(scoped in CaptureFrame frame, long frameNumber, ref PacketRecord r, DissectorOptions options = DissectorOptions.Default)
    {
        r.Reset();
        r.FrameNumber = frameNumber;
        r.TimestampNanoseconds = frame.TimestampNanoseconds;
        r.HasTimestamp = frame.HasTimestamp;
        r.FrameLength = frame.OriginalLength;
        r.CapturedLength = (uint)frame.Data.Length;
        r.LinkType = frame.LinkType;
        r.Kind = frame.Kind;
        r.InterfaceId = frame.InterfaceId;
        if (frame.Kind == FrameKind.Packet)
        {
            PacketDissector.Dissect(frame.Data, frame.LinkType, ref r, options);
        }
    }
}
