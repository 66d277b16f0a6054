namespace Survey6.Testing;

/// <summary>
/// A folder for configuration files and a section name of its own, so that the process-wide environment variables a
/// test sets meet no other test; the folder and the variables are removed on dispose.
/// </summary>
public sealed class ConfigurationScratch : IDisposable
{
    private readonly List<string> _variables = [];

    public DirectoryInfo Folder { get; } = Directory.CreateTempSubdirectory("survey6-config-");

    /// <summary>A section no other test uses.</summary>
    public string Section { get; } = "Scratch" + Guid.NewGuid().ToString("N")[..12];

    /// <summary><paramref name="name"/> in <see cref="Section"/>, as configuration spells it (<c>Section:Name</c>).</summary>
    public string Key(string name) => $"{Section}:{name}";

    /// <summary>Writes <paramref name="text"/> to <paramref name="name"/> in the folder; returns its path.</summary>
    public string Write(string name, string text)
    {
        var path = Path.Combine(Folder.FullName, name);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>A JSON file holding <see cref="Section"/> with <paramref name="pairs"/>; returns its path.</summary>
    public string WriteSection(string name, params (string Key, string Value)[] pairs) =>
        Write(name, $"{{ \"{Section}\": {{ {string.Join(", ", pairs.Select(p => $"\"{p.Key}\": \"{p.Value}\""))} }} }}");

    /// <summary>Sets <c>Section__Key</c> in this process's environment until dispose.</summary>
    public void SetVariable(string key, string value)
    {
        var name = $"{Section}__{key}";
        _variables.Add(name);
        Environment.SetEnvironmentVariable(name, value);
    }

    public void Dispose()
    {
        foreach (var variable in _variables)
            Environment.SetEnvironmentVariable(variable, null);
        Folder.Delete(recursive: true);
    }
}
