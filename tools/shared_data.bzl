"""`shared_data_repository`: the read-only `../shared/data` folder as a Bazel repository.

Like `new_local_repository` (each top-level entry of the folder is symlinked into the
repository and the given BUILD file added), with a clear error when the folder is
missing, and `GPT1_SHARED_DIR` (the `shared` folder) as an override of its location.
Files reached through it are inputs of the targets that list them in `data`, so a
change of the data re-runs those tests instead of reusing cached results.
"""

def _shared_data_impl(ctx):
    workspace = ctx.path(Label("//:WORKSPACE")).dirname
    override = ctx.os.environ.get("GPT1_SHARED_DIR", "")
    if override:
        where = "$GPT1_SHARED_DIR/data"
        path = ctx.path(override + "/data")
    else:
        where = ctx.attr.path
        path = ctx.path("%s/%s" % (workspace, ctx.attr.path))
    if not path.exists:
        fail(("\n\nThe shared data folder %s (%s) does not exist.\n" +
              "Tests and benchmarks that read real data need the read-only `shared` folder " +
              "beside this clone (its `data/SOURCES.md` lists the files), or " +
              "GPT1_SHARED_DIR=/path/to/shared in the environment of bazel.\n") % (where, path))
    for entry in path.readdir():
        ctx.symlink(entry, entry.basename)
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)
    ctx.file("BUILD.bazel", ctx.attr.build_file_content)

shared_data_repository = repository_rule(
    implementation = _shared_data_impl,
    attrs = {
        "path": attr.string(
            mandatory = True,
            doc = "The data folder, relative to the workspace root.",
        ),
        "build_file_content": attr.string(mandatory = True),
    },
    environ = ["GPT1_SHARED_DIR"],
    local = True,
)
