using System.Security.Cryptography;
using Survey6.Packets.Files;

namespace Survey6.Aggregator.Anonymisation;

/// <summary>
/// The deployment's Crypto-PAn key: 32 raw bytes in a file. The default file (<c>DATA/anonymisation.key</c>) is created
/// with random bytes and mode 0600 on first use; a file named in the options must already exist, because a fresh key
/// there would silently give a mapping that matches no earlier output.
/// </summary>
public static class AnonymisationKey
{
    /// <summary>The anonymiser the options ask for, or null when anonymisation is off.</summary>
    public static PrefixPreservingAnonymiser? FromOptions(AggregatorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var anonymisation = options.Anonymisation;
        if (!anonymisation.Enabled)
            return null;
        var key = anonymisation.KeyPath is { } given
            ? Read(Path.GetFullPath(given))
            : LoadOrCreate(options.Layout.AnonymisationKey);
        try
        {
            return new PrefixPreservingAnonymiser(key);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Reads the key at <paramref name="path"/>, creating it (0600) when it does not exist yet.</summary>
    public static byte[] LoadOrCreate(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (File.Exists(path))
            return Read(path);
        SecureFiles.CreateOwnerOnlyDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var key = RandomNumberGenerator.GetBytes(PrefixPreservingAnonymiser.KeyLength);
        // Never over an existing key, so that of two processes creating the key at once both end up with the winner's.
        if (DurableFiles.CreateAtomically(path, key, SecureFiles.OwnerOnlyFile))
            return key;
        CryptographicOperations.ZeroMemory(key);
        return Read(path);
    }

    private static byte[] Read(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"The anonymisation key file {path} does not exist (Aggregator:Anonymisation:KeyPath).", path);
        var key = File.ReadAllBytes(path);
        if (key.Length != PrefixPreservingAnonymiser.KeyLength)
        {
            CryptographicOperations.ZeroMemory(key);
            throw new InvalidDataException($"The anonymisation key file {path} holds {key.Length} bytes; a Crypto-PAn key is {PrefixPreservingAnonymiser.KeyLength} raw bytes.");
        }
        return key;
    }
}
