using Microsoft.Win32.SafeHandles;

namespace Survey6.Server.Storage;

/// <summary>
/// Reads a file front to back through a handle the caller keeps open. The part file is held with an exclusive
/// lock, so opening it a second time to validate it would fail; this reads through the locked handle instead.
/// </summary>
internal sealed class HandleReadStream(SafeFileHandle handle, long length) : Stream
{
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int wanted = (int)Math.Min(buffer.Length, length - _position);
        if (wanted <= 0)
            return 0;
        int read = RandomAccess.Read(handle, buffer[..wanted], _position);
        _position += read;
        return read;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
