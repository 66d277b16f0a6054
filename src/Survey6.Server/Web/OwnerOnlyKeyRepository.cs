using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Survey6.Contracts;
using Survey6.Packets.Files;
using Survey6.Server.Options;
using Survey6.Server.Pki;

namespace Survey6.Server.Web;

/// <summary>
/// The Data Protection key ring (it signs the session cookie and the antiforgery tokens) in
/// <c>DATA/data-protection</c>: a directory of mode 0700 with one 0600 XML file per key, each written to a
/// temporary file, synced and renamed into place. Kept only in memory, as ASP.NET Core does when it finds
/// nowhere to store keys, every restart of the server would log every operator out and void the forms
/// they had open. The keys are not encrypted at rest: like the CA key beside them, they are protected by
/// the data directory's owner-only modes.
/// </summary>
public sealed class OwnerOnlyKeyRepository : IXmlRepository
{
    private readonly string _directory;

    public OwnerOnlyKeyRepository(string directory)
    {
        _directory = Path.GetFullPath(directory);
        SecureFiles.CreateOwnerOnlyDirectory(_directory);
    }

    public IReadOnlyCollection<XElement> GetAllElements() =>
        Directory.EnumerateFiles(_directory, "*.xml").Order(StringComparer.Ordinal).Select(f => XElement.Load(f)).ToList();

    public void StoreElement(XElement element, string friendlyName)
    {
        ArgumentNullException.ThrowIfNull(element);
        // friendlyName is "key-GUID" for keys; anything else gets a fresh name rather than a path of its choosing.
        var name = !string.IsNullOrEmpty(friendlyName) && friendlyName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            ? friendlyName
            : Guid.NewGuid().ToString("D");
        SecureFiles.WriteAtomically(Path.Combine(_directory, name + ".xml"), element.ToString(SaveOptions.DisableFormatting), SecureFiles.OwnerOnlyFile);
    }
}

public static class DataProtectionHostingExtensions
{
    /// <summary>Data Protection for the web UI with its keys in the data directory (<see cref="OwnerOnlyKeyRepository"/>).</summary>
    public static IServiceCollection AddSurvey6DataProtection(this IServiceCollection services)
    {
        services.AddDataProtection().SetApplicationName("survey6-server");
        services.AddOptions<KeyManagementOptions>().Configure<IOptions<ServerOptions>>((keys, server) =>
            keys.XmlRepository = new OwnerOnlyKeyRepository(new ServerDataDirectory(server.Value.DataDirectory).DataProtectionKeys));
        return services;
    }
}
