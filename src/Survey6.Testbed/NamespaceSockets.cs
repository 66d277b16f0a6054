using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Survey6.Testbed;

/// <summary>
/// Creates sockets inside another network namespace: a socket belongs to the namespace of the thread that created
/// it, so a dedicated thread enters the namespace (setns), creates the socket and ends. The socket can then be
/// used from any thread, and this process never leaves its own namespace.
/// </summary>
public static partial class NamespaceSockets
{
    private const int CloneNewNet = 0x40000000;

    public static Socket Create(string networkNamespace, SocketType type, ProtocolType protocol)
    {
        Socket? socket = null;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle("/run/netns/" + networkNamespace, FileMode.Open, FileAccess.Read);
                if (SetNamespace((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                    throw new IOException($"setns({networkNamespace}) failed: errno {Marshal.GetLastPInvokeError()}");
                socket = new Socket(AddressFamily.InterNetworkV6, type, protocol);
            }
            catch (Exception e)
            {
                failure = e;
            }
        })
        {
            IsBackground = true,
            Name = "netns " + networkNamespace,
        };
        thread.Start();
        thread.Join();
        return socket ?? throw new IOException($"cannot open a socket in namespace {networkNamespace}", failure);
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNamespace(int fd, int nstype);
}
