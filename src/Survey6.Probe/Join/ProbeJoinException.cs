namespace Survey6.Probe.Join;

/// <summary>A join that could not complete; the message says why in terms an operator can act on.</summary>
public sealed class ProbeJoinException : Exception
{
    public ProbeJoinException()
    {
    }

    public ProbeJoinException(string message)
        : base(message)
    {
    }

    public ProbeJoinException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
