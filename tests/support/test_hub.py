"""The local Hub, exercised only through the real huggingface_hub client (and raw HTTP for ranges)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url, snapshot_download
from huggingface_hub.errors import (
    DisabledRepoError,
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder

from tests.support.hub import HubServer, hours_ago, make_model_repo
from tests.support.safetensors_writer import parse_header

MiB = 1024 * 1024


def sha256_of(path: str | Path) -> str:
    """sha256 of a file on disk."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- model API -----------------------------------------------------------------------------------------
def test_model_info_full_expand_and_files_metadata(hub: HubServer, hub_api: HfApi) -> None:
    model = make_model_repo(hub, "org/llama-mini", norm_dtype="F32", downloads=42, likes=7, license="mit")

    info = hub_api.model_info("org/llama-mini")
    assert info.id == "org/llama-mini"
    assert info.author == "org"
    assert info.sha == model.commit
    assert info.downloads == 42 and info.likes == 7
    assert info.pipeline_tag == "text-generation"
    assert info.library_name == "transformers"
    assert info.gated is False and info.private is False
    assert info.card_data is not None and info.card_data.license == "mit"
    assert "license:mit" in (info.tags or []) and "llama" in (info.tags or [])
    assert info.config is not None and info.config["architectures"] == ["LlamaForCausalLM"]
    assert info.config["model_type"] == "llama"
    assert "num_hidden_layers" not in info.config  # like the real Hub: config.json itself has the rest
    assert info.safetensors is not None
    assert info.safetensors.parameters == model.parameters
    assert set(model.parameters) == {"BF16", "F32"}
    assert info.safetensors.total == model.total_parameters
    assert {s.rfilename for s in info.siblings or []} == set(model.files)
    assert all(s.size is None for s in info.siblings or [])

    expanded = hub_api.model_info("org/llama-mini", expand=["safetensors", "config"])
    assert expanded.safetensors is not None and expanded.safetensors.parameters == model.parameters
    assert expanded.config is not None and expanded.config["architectures"] == ["LlamaForCausalLM"]
    assert expanded.downloads is None and expanded.siblings is None and expanded.tags is None

    detailed = hub_api.model_info("org/llama-mini", files_metadata=True)
    siblings = {s.rfilename: s for s in detailed.siblings or []}
    weights = siblings["model.safetensors"]
    assert weights.size == model.files["model.safetensors"].size
    assert weights.lfs is not None and weights.lfs.sha256 == model.files["model.safetensors"].sha256
    assert siblings["config.json"].lfs is None
    assert siblings["config.json"].blob_id == model.files["config.json"].git_oid

    with pytest.raises(HfHubHTTPError):
        hub_api.model_info("org/llama-mini", expand=["notAField"])  # type: ignore[list-item]  # deliberate bad value


def test_revisions_branches_tags_and_errors(hub: HubServer, hub_api: HfApi, tmp_path: Path) -> None:
    first = hub.add_repo("org/evolving", {"config.json": '{"model_type": "llama"}'})
    hub.create_tag("org/evolving", "v1")
    second = hub.add_commit("org/evolving", {"config.json": '{"model_type": "mistral"}'})
    dev = hub.add_commit("org/evolving", {"notes.txt": "wip"}, branch="dev")

    assert hub_api.model_info("org/evolving").sha == second
    assert hub_api.model_info("org/evolving", revision="v1").sha == first
    assert hub_api.model_info("org/evolving", revision=first).sha == first
    assert hub_api.model_info("org/evolving", revision="dev").sha == dev
    refs = hub_api.list_repo_refs("org/evolving")
    assert {b.name: b.target_commit for b in refs.branches} == {"main": second, "dev": dev}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", first)]

    old = hf_hub_download("org/evolving", "config.json", revision="v1", cache_dir=tmp_path, endpoint=hub.url)
    new = hf_hub_download("org/evolving", "config.json", cache_dir=tmp_path, endpoint=hub.url)
    assert json.loads(Path(old).read_text())["model_type"] == "llama"
    assert json.loads(Path(new).read_text())["model_type"] == "mistral"

    with pytest.raises(RevisionNotFoundError):
        hub_api.model_info("org/evolving", revision="v9")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/evolving", "config.json", revision="nope", cache_dir=tmp_path, endpoint=hub.url)
    with pytest.raises(RepositoryNotFoundError):
        hub_api.model_info("org/missing")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/missing", "config.json", cache_dir=tmp_path, endpoint=hub.url)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/evolving", "nope.json", cache_dir=tmp_path, endpoint=hub.url)
    assert hub_api.file_exists("org/evolving", "config.json")
    assert not hub_api.file_exists("org/evolving", "nope.json")
    assert hub_api.repo_exists("org/evolving") and not hub_api.repo_exists("org/missing")


def test_list_models_search_filters_sort_limit(hub: HubServer, hub_api: HfApi) -> None:
    make_model_repo(hub, "meta/Llama-Small", downloads=500, likes=10, license="llama3", last_modified=hours_ago(5))
    make_model_repo(
        hub, "mistral/Mistral-Tiny", downloads=900, likes=3, license="apache-2.0", last_modified=hours_ago(1)
    )
    make_model_repo(
        hub, "acme/llama-gated", downloads=100, likes=50, gated=True, license="apache-2.0", trending_score=9
    )
    hub.add_repo("acme/bert-ish", {"config.json": "{}"}, pipeline_tag="fill-mask", downloads=10_000, license="mit")

    ids = lambda models: [m.id for m in models]  # noqa: E731

    assert ids(hub_api.list_models(search="LLAMA")) == ["meta/Llama-Small", "acme/llama-gated"]
    assert ids(hub_api.list_models(author="acme")) == ["acme/llama-gated", "acme/bert-ish"]
    assert ids(hub_api.list_models(filter="license:apache-2.0")) == ["mistral/Mistral-Tiny", "acme/llama-gated"]
    assert ids(hub_api.list_models(filter=["text-generation", "license:llama3"])) == ["meta/Llama-Small"]
    assert ids(hub_api.list_models(pipeline_tag="fill-mask")) == ["acme/bert-ish"]
    assert ids(hub_api.list_models(gated=True)) == ["acme/llama-gated"]
    assert ids(hub_api.list_models(sort="downloads", limit=2)) == ["acme/bert-ish", "mistral/Mistral-Tiny"]
    assert ids(hub_api.list_models(sort="likes", limit=1)) == ["acme/llama-gated"]
    assert ids(hub_api.list_models(sort="trending_score", limit=1)) == ["acme/llama-gated"]
    assert ids(hub_api.list_models(sort="last_modified", search="e", limit=2))[0] == "acme/bert-ish"
    assert ids(hub_api.list_models(num_parameters="min:1M", sort="downloads")) == [
        "mistral/Mistral-Tiny",
        "meta/Llama-Small",
        "acme/llama-gated",
    ]

    (plain,) = hub_api.list_models(search="Mistral-Tiny")
    assert plain.downloads == 900 and plain.safetensors is None and plain.config is None
    (expanded,) = hub_api.list_models(search="Mistral-Tiny", expand=["safetensors", "gated"])
    assert expanded.safetensors is not None and expanded.safetensors.total > 1_000_000
    assert expanded.downloads is None and expanded.gated is False
    (full,) = hub_api.list_models(search="Mistral-Tiny", full=True, cardData=True, fetch_config=True)
    assert full.sha is not None and full.siblings and full.config and full.card_data is not None

    hub.page_size = 2
    hub.reset_requests()
    assert len(list(hub_api.list_models())) == 4  # follows the Link header
    assert hub.count("/api/models") == 2


def test_list_repo_tree_sizes_lfs_and_folders(hub: HubServer, hub_api: HfApi) -> None:
    big = bytes(range(256)) * 100  # 25.6 KB: LFS by size
    sha = hub.add_repo(
        "org/tree",
        {"README.md": "# hi\n", "sub/dir/big.dat": big, "sub/small.txt": "x", "weights.safetensors": b"12345678"},
    )

    entries = {e.path: e for e in hub_api.list_repo_tree("org/tree", recursive=True)}
    assert {p for p, e in entries.items() if isinstance(e, RepoFolder)} == {"sub", "sub/dir"}
    big_entry = entries["sub/dir/big.dat"]
    assert isinstance(big_entry, RepoFile)
    assert big_entry.size == len(big)
    assert big_entry.lfs is not None and big_entry.lfs.sha256 == hashlib.sha256(big).hexdigest()
    assert big_entry.lfs.size == len(big)
    small = entries["sub/small.txt"]
    assert isinstance(small, RepoFile) and small.lfs is None and small.size == 1
    assert small.blob_id == hashlib.sha1(b"blob 1\0x").hexdigest()  # git blob id
    assert isinstance(entries["weights.safetensors"], RepoFile) and entries["weights.safetensors"].lfs

    top = {e.path for e in hub_api.list_repo_tree("org/tree")}
    assert top == {".gitattributes", "README.md", "sub", "weights.safetensors"}
    below = list(hub_api.list_repo_tree("org/tree", path_in_repo="sub", expand=True, revision=sha))
    assert {e.path for e in below} == {"sub/dir", "sub/small.txt"}
    assert all(e.last_commit is not None and e.last_commit.oid == sha for e in below)
    with pytest.raises(EntryNotFoundError):
        list(hub_api.list_repo_tree("org/tree", path_in_repo="nope"))
    infos = hub_api.get_paths_info("org/tree", ["sub", "README.md", "missing"])
    assert sorted(i.path for i in infos) == ["README.md", "sub"]

    hub.page_size = 2
    assert len(list(hub_api.list_repo_tree("org/tree", recursive=True))) == len(entries)


def test_get_safetensors_metadata_single_file_with_big_header(hub: HubServer, hub_api: HfApi) -> None:
    # ~300 KB header: more than the client's first 100 KB range, so it needs a second range request.
    model = make_model_repo(hub, "org/deep", num_hidden_layers=300, hidden_size=16, num_attention_heads=2)
    header_length = int.from_bytes(model.files["model.safetensors"].content.read_at(0, 8), "little")
    assert header_length > 100_000

    meta = hub_api.get_safetensors_metadata("org/deep")
    assert not meta.sharded
    assert meta.parameter_count == model.parameters
    tensors = meta.files_metadata["model.safetensors"].tensors
    assert "model.layers.299.self_attn.q_proj.weight" in tensors
    assert meta.files_metadata["model.safetensors"].metadata == {"format": "pt"}
    ranges = [r.range for r in hub.downloads("model.safetensors")]
    assert ranges == ["bytes=0-100000", f"bytes=8-{header_length + 7}"]


def test_get_safetensors_metadata_sharded(hub: HubServer, hub_api: HfApi) -> None:
    model = make_model_repo(hub, "org/sharded", shards=3, total_bytes=2 * MiB)
    assert model.weight_files == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]

    meta = hub_api.get_safetensors_metadata("org/sharded")
    assert meta.sharded
    assert set(meta.files_metadata) == set(model.weight_files)
    assert meta.parameter_count == model.parameters
    assert meta.weight_map["lm_head.weight"] == "model-00003-of-00003.safetensors"
    assert meta.metadata == {
        "total_size": sum(model.files[f].size for f in model.weight_files)
        - sum(8 + int.from_bytes(model.files[f].content.read_at(0, 8), "little") for f in model.weight_files)
    }
    fast = hub_api.get_sharded_safetensors_metadata("org/sharded")
    assert fast.parameter_count == model.parameters


# -- downloads -----------------------------------------------------------------------------------------
def test_hf_hub_download_and_snapshot_are_byte_identical(hub: HubServer, tmp_path: Path) -> None:
    model = make_model_repo(hub, "org/dl", shards=2, total_bytes=3 * MiB)

    snapshot = snapshot_download("org/dl", local_dir=tmp_path / "all", max_workers=4, endpoint=hub.url)
    for name, blob in model.files.items():
        assert sha256_of(Path(snapshot) / name) == blob.sha256, name

    only_json = snapshot_download("org/dl", local_dir=tmp_path / "json", allow_patterns=["*.json"], endpoint=hub.url)
    assert {p.name for p in Path(only_json).iterdir() if p.is_file()} == {n for n in model.files if n.endswith(".json")}

    cached = hf_hub_download(
        "org/dl", "model-00001-of-00002.safetensors", revision=model.commit, cache_dir=tmp_path / "c", endpoint=hub.url
    )
    assert sha256_of(cached) == model.files["model-00001-of-00002.safetensors"].sha256
    hub.reset_requests()
    again = hf_hub_download(
        "org/dl", "model-00001-of-00002.safetensors", revision=model.commit, cache_dir=tmp_path / "c", endpoint=hub.url
    )
    assert again == cached and hub.count() == 0  # pinned commit + cached => no HTTP at all

    hf_hub_download("org/dl", "config.json", cache_dir=tmp_path / "c", endpoint=hub.url)
    hub.reset_requests()
    hf_hub_download("org/dl", "config.json", cache_dir=tmp_path / "c", endpoint=hub.url)
    assert [(r.method, r.status) for r in hub.requests] == [("HEAD", 200)]  # revision "main": one HEAD


def test_resolve_headers_and_file_metadata(hub: HubServer) -> None:
    model = make_model_repo(hub, "org/heads")
    weights = model.files["model.safetensors"]
    config = model.files["config.json"]
    with httpx2.Client(base_url=hub.url) as client:
        head = client.head("/org/heads/resolve/main/model.safetensors")
        assert head.status_code == 302
        assert head.headers["X-Linked-Etag"] == f'"{weights.sha256}"'
        assert head.headers["X-Linked-Size"] == str(weights.size)
        assert head.headers["X-Repo-Commit"] == model.commit
        assert head.headers["Location"].startswith("/cdn-lfs/")
        assert not any(k.lower().startswith("x-xet") for k in head.headers)
        small = client.head("/org/heads/resolve/main/config.json")
        assert small.status_code == 200
        assert small.headers["ETag"] == f'"{config.git_oid}"'
        assert small.headers["Content-Length"] == str(config.size)
        assert small.headers["Accept-Ranges"] == "bytes"
        missing = client.head("/org/heads/resolve/main/nope.bin")
        assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "EntryNotFound"
        assert client.get("/org/nope/resolve/main/x").headers["X-Error-Code"] == "RepoNotFound"
        assert client.get("/org/heads/resolve/v7/x").headers["X-Error-Code"] == "RevisionNotFound"

    meta = get_hf_file_metadata(hf_hub_url("org/heads", "model.safetensors", endpoint=hub.url))
    assert (meta.etag, meta.size, meta.commit_hash) == (weights.sha256, weights.size, model.commit)
    assert meta.xet_file_data is None
    meta = get_hf_file_metadata(hf_hub_url("org/heads", "config.json", endpoint=hub.url))
    assert (meta.etag, meta.size) == (config.git_oid, config.size)


def test_range_requests(hub: HubServer) -> None:
    data = bytes(range(256)) * 4
    hub.add_repo("org/ranges", {"data.txt": data[:1000], "blob.bin": data})
    with httpx2.Client(base_url=hub.url, follow_redirects=True) as client:
        part = client.get("/org/ranges/resolve/main/data.txt", headers={"Range": "bytes=2-5"})
        assert part.status_code == 206 and part.content == data[2:6]
        assert part.headers["Content-Range"] == "bytes 2-5/1000"
        tail = client.get("/org/ranges/resolve/main/blob.bin", headers={"Range": "bytes=1000-"})
        assert tail.status_code == 206 and tail.content == data[1000:]
        assert tail.headers["Content-Range"] == "bytes 1000-1023/1024"
        suffix = client.get("/org/ranges/resolve/main/blob.bin", headers={"Range": "bytes=-4"})
        assert suffix.content == data[-4:]
        beyond = client.get("/org/ranges/resolve/main/blob.bin", headers={"Range": "bytes=1024-"})
        assert beyond.status_code == 416 and beyond.headers["Content-Range"] == "bytes */1024"
        whole = client.get("/org/ranges/resolve/main/blob.bin")
        assert whole.status_code == 200 and whole.content == data


def test_gated_private_and_disabled_repos(hub: HubServer, hub_api: HfApi, tmp_path: Path) -> None:
    model = make_model_repo(hub, "org/gated", gated=True)
    assert hub_api.model_info("org/gated").gated == "auto"  # metadata stays public
    with pytest.raises(GatedRepoError) as anonymous:
        hf_hub_download("org/gated", "config.json", local_dir=tmp_path / "a", endpoint=hub.url)
    assert anonymous.value.response.status_code == 401
    with pytest.raises(GatedRepoError):
        hf_hub_download("org/gated", "config.json", local_dir=tmp_path / "b", token="hf_wrong", endpoint=hub.url)
    path = hf_hub_download(
        "org/gated", "model.safetensors", local_dir=tmp_path / "c", token=hub.token, endpoint=hub.url
    )
    assert sha256_of(path) == model.files["model.safetensors"].sha256

    hub.add_token("hf_other_user")
    hub.update_repo("org/gated", authorized_tokens=[hub.token])
    with pytest.raises(GatedRepoError) as not_approved:
        hf_hub_download("org/gated", "config.json", local_dir=tmp_path / "d", token="hf_other_user", endpoint=hub.url)
    assert not_approved.value.response.status_code == 403

    hub.add_repo("org/secret", {"config.json": "{}"}, private=True)
    with pytest.raises(RepositoryNotFoundError):
        hub_api.model_info("org/secret")
    assert hub_api.model_info("org/secret", token=hub.token).private is True
    assert "org/secret" not in [m.id for m in hub_api.list_models()]

    hub.add_repo("org/disabled", {"config.json": "{}"}, disabled=True)
    with pytest.raises(DisabledRepoError):
        get_hf_file_metadata(hf_hub_url("org/disabled", "config.json", endpoint=hub.url))
    with pytest.raises(LocalEntryNotFoundError) as disabled:  # hf_hub_download wraps it
        hf_hub_download("org/disabled", "config.json", local_dir=tmp_path / "e", endpoint=hub.url)
    assert isinstance(disabled.value.__cause__, DisabledRepoError)

    assert hub_api.whoami(token=hub.token)["name"] == "local-tester"
    with pytest.raises(HfHubHTTPError):
        hub_api.whoami(token="hf_wrong")


def test_separate_origin_cdn_does_not_receive_the_token(tmp_path: Path, hf_cache: Path) -> None:
    with HubServer(cdn="separate-origin") as other:
        model = make_model_repo(other, "org/cdn", gated=True)
        assert other.cdn_url != other.url
        path = hf_hub_download(
            "org/cdn", "model.safetensors", local_dir=tmp_path, token=other.token, endpoint=other.url
        )
        assert sha256_of(path) == model.files["model.safetensors"].sha256
        cdn_gets = [r for r in other.requests if r.path.startswith("/cdn-lfs/") and r.method == "GET"]
        assert len(cdn_gets) == 1 and not cdn_gets[0].authorization
        assert not any(r.path.startswith("/cdn-lfs/") and r.method == "HEAD" for r in other.requests)


# -- failure knobs -------------------------------------------------------------------------------------
def test_drop_after_resumes_with_a_range_request(hub: HubServer, tmp_path: Path) -> None:
    hub.add_repo("org/big", {})
    hub.add_large_file("org/big", "weights.bin", size=12 * MiB, seed=3)
    blob = hub.blob("org/big", "weights.bin")
    hub.drop_after("weights.bin", 11 * MiB)

    path = hf_hub_download("org/big", "weights.bin", local_dir=tmp_path, endpoint=hub.url)

    assert sha256_of(path) == blob.sha256
    gets = hub.downloads("weights.bin")
    assert [g.range for g in gets] == [None, f"bytes={10 * MiB}-"]  # client keeps whole 10 MiB chunks
    assert gets[0].bytes_sent == 11 * MiB
    assert hub.bytes_sent("weights.bin") < 2 * blob.size


def test_drop_early_restarts_and_still_completes(hub: HubServer, tmp_path: Path) -> None:
    model = make_model_repo(hub, "org/flaky", total_bytes=2 * MiB)
    hub.drop_after("model.safetensors", 256 * 1024)

    path = hf_hub_download("org/flaky", "model.safetensors", local_dir=tmp_path, endpoint=hub.url)

    size = model.files["model.safetensors"].size
    assert sha256_of(path) == model.files["model.safetensors"].sha256
    assert len(hub.downloads("model.safetensors")) == 2
    assert hub.bytes_sent("model.safetensors") < 2 * size


def test_corrupt_serves_same_size_wrong_sha(hub: HubServer, hub_api: HfApi, tmp_path: Path) -> None:
    model = make_model_repo(hub, "org/bad")
    hub.corrupt("model.safetensors")

    path = hf_hub_download("org/bad", "model.safetensors", local_dir=tmp_path, endpoint=hub.url)

    (entry,) = [e for e in hub_api.list_repo_tree("org/bad") if e.path == "model.safetensors"]
    assert isinstance(entry, RepoFile) and entry.lfs is not None
    assert Path(path).stat().st_size == entry.size  # the client only checks the size...
    assert sha256_of(path) != entry.lfs.sha256  # ...so the sha256 check is ours to do
    hub.clear_faults()
    good = hf_hub_download("org/bad", "model.safetensors", local_dir=tmp_path / "ok", endpoint=hub.url)
    assert sha256_of(good) == model.files["model.safetensors"].sha256


def test_throttle_limits_download_rate(hub: HubServer) -> None:
    hub.add_repo("org/slow", {})
    hub.add_large_file("org/slow", "blob.bin", size=2 * MiB)
    url = f"{hub.url}/org/slow/resolve/main/blob.bin"
    with httpx2.Client(follow_redirects=True) as client:
        hub.throttle(8 * MiB)
        started = time.monotonic()
        assert len(client.get(url).content) == 2 * MiB
        throttled = time.monotonic() - started
        hub.throttle(None)
        started = time.monotonic()
        client.get(url)
        free = time.monotonic() - started
    assert 0.2 <= throttled < 1.5
    assert free < throttled / 2


def test_hub_down_modes(hub: HubServer, hub_api: HfApi, tmp_path: Path) -> None:
    hub.add_repo("org/up", {"config.json": "{}"})
    cached = hf_hub_download("org/up", "config.json", cache_dir=tmp_path, endpoint=hub.url)

    hub.set_down(True)
    with pytest.raises(httpx2.ConnectError):
        hub_api.model_info("org/up")
    # huggingface_hub falls back to its cache when the Hub cannot be reached.
    assert hf_hub_download("org/up", "config.json", cache_dir=tmp_path, endpoint=hub.url) == cached
    hub.set_down(False)
    assert hub_api.model_info("org/up").id == "org/up"

    hub.set_down(True, mode="503")
    with pytest.raises(HfHubHTTPError) as unavailable:
        hub_api.model_info("org/up")
    assert unavailable.value.response.status_code == 503
    hub.set_down(True, mode="reset")
    with pytest.raises(httpx2.RemoteProtocolError):
        hub_api.model_info("org/up")
    hub.set_down(False)
    assert hub_api.model_info("org/up").id == "org/up"


def test_strict_tokens_reject_unknown_tokens(hub: HubServer) -> None:
    hub.add_repo("org/public", {"config.json": "{}"})
    hub.strict_tokens = True
    with pytest.raises(HfHubHTTPError) as rejected:
        HfApi(endpoint=hub.url, token="hf_bogus").model_info("org/public")
    assert not isinstance(rejected.value, RepositoryNotFoundError)
    assert rejected.value.response.status_code == 401
    assert HfApi(endpoint=hub.url, token=hub.token).model_info("org/public").id == "org/public"


def test_large_files_from_disk_and_generated(hub: HubServer, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(hashlib.sha256(b"seed").digest() * (MiB // 16))  # 2 MiB on disk
    hub.add_repo("org/bench", {})
    hub.add_large_file("org/bench", "from-disk.bin", source_path=source)
    hub.add_large_file("org/bench", "generated.bin", size=24 * MiB + 123, seed=9, prefix=b"HEADER")

    out = Path(snapshot_download("org/bench", local_dir=tmp_path / "out", endpoint=hub.url))
    assert sha256_of(out / "from-disk.bin") == sha256_of(source)
    assert sha256_of(out / "generated.bin") == hub.blob("org/bench", "generated.bin").sha256
    assert (out / "generated.bin").read_bytes()[:6] == b"HEADER"
    assert (out / "generated.bin").stat().st_size == 24 * MiB + 123


def test_make_model_repo_writes_real_files(hub: HubServer) -> None:
    model = make_model_repo(hub, "org/real", num_key_value_heads=2, total_bytes=3 * MiB, extra_config={"foo": 1})
    config = json.loads(model.files["config.json"].content.read_at(0, 10_000))
    assert config["num_key_value_heads"] == 2 and config["foo"] == 1 and config["torch_dtype"] == "bfloat16"
    header: dict[str, Any] = parse_header(model.files["model.safetensors"].content.read_at(0, 200_000))
    assert header["__metadata__"] == {"format": "pt"}
    k_proj = header["model.layers.0.self_attn.k_proj.weight"]
    assert k_proj["dtype"] == "BF16"
    assert k_proj["shape"] == [2 * model.config["head_dim"], model.config["hidden_size"]]
    start, end = k_proj["data_offsets"]
    assert end - start == 2 * model.config["head_dim"] * model.config["hidden_size"] * 2
    assert abs(model.weight_bytes - 3 * MiB) < 64 * 1024
    assert 1000 < model.config["vocab_size"] < 20_000  # dimensions were scaled to the requested size
    assert {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "README.md", ".gitattributes"} <= set(
        model.files
    )
