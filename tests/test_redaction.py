"""The redactor: known keys in every form they travel in, URL credentials, secret-looking config keys, log records,
Hydra's files and streamed text."""

import base64
import io
import logging
from urllib.parse import quote

import pytest
from omegaconf import OmegaConf

from delegate import redaction
from delegate.redaction import (
    MARKER,
    RedactingFilter,
    RedactingSink,
    install_log_redaction,
    is_secret_key,
    redact,
    redact_config,
    redact_files,
    redact_override,
    register_config_secrets,
    register_secret,
    register_url_credentials,
)
from tests.support.canary import carries

# Spelt so that no secret scanner takes them for real keys; the second has characters URL-encoding changes.
CANARY = "sentinel-delegate-redaction-canary-0123456789"
ODD_CANARY = "sentinel/canary+with=odd chars&more"


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test starts with no registered secrets (the registry is process-wide)."""
    monkeypatch.setattr(redaction, "_registered", set())


def basic_header(user: str, key: str, alphabet=base64.b64encode) -> str:
    return "Authorization: Basic " + alphabet(f"{user}:{key}".encode()).decode()


# plain, URL-encoded, base64


def test_a_registered_key_is_replaced_by_the_marker():
    register_secret(CANARY)
    assert redact(f"Incorrect API key provided: Bearer {CANARY}.") == f"Incorrect API key provided: Bearer {MARKER}."


@pytest.mark.parametrize(
    "encode",
    [lambda s: quote(s, safe=""), lambda s: quote(s, safe="").lower(), quote],
    ids=["quote", "lowercase-hex", "slash-kept"],
)
def test_a_url_encoded_key_is_removed(encode):
    register_secret(ODD_CANARY)
    text = f"GET /v1/models?key={encode(ODD_CANARY)}&x=1"
    assert redact(text) == f"GET /v1/models?key={MARKER}&x=1"


@pytest.mark.parametrize("secret", [CANARY, ODD_CANARY])
@pytest.mark.parametrize("before", ["", "u", "us", "use", "user:", "a longer prefix of 17"])
@pytest.mark.parametrize("alphabet", [base64.b64encode, base64.urlsafe_b64encode], ids=["standard", "url-safe"])
def test_a_key_inside_base64_is_removed_at_every_alignment(secret, before, alphabet):
    register_secret(secret)
    encoded = alphabet(f"{before}{secret} and what follows".encode()).decode()
    assert carries(encoded, secret)
    assert not carries(redact(f"echo: {encoded}"), secret)
    assert MARKER in redact(encoded)


def test_an_echoed_basic_header_loses_the_key():
    register_secret(CANARY)
    for alphabet in (base64.b64encode, base64.urlsafe_b64encode):
        echoed = f'{{"error": "bad auth: {basic_header("delegate", CANARY, alphabet)}"}}'
        assert carries(echoed, CANARY)
        assert not carries(redact(echoed), CANARY)


def test_redacting_twice_changes_nothing_more():
    register_secret(CANARY)
    once = redact(f"http://user:{CANARY}@host/v1 {basic_header('u', CANARY)} {CANARY}")
    assert redact(once) == once


def test_values_shorter_than_the_minimum_are_not_secrets():
    register_secret("1234567")
    assert redact("the answer is 1234567") == "the answer is 1234567"


# URL userinfo


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("calling http://user:pw@127.0.0.1:8000/v1 now", "calling http://***@127.0.0.1:8000/v1 now"),
        ("postgresql://delegate:s3cret@db.example:5432/mlflow", "postgresql://***@db.example:5432/mlflow"),
        ("https://KEYONLY@host/v1/chat/completions", "https://***@host/v1/chat/completions"),
        ("two: http://a:b@h1/x,https://c:d@h2/y", "two: http://***@h1/x,https://***@h2/y"),
        ("http://127.0.0.1:5000/#/experiments", "http://127.0.0.1:5000/#/experiments"),
        ("mail me at someone@example.com", "mail me at someone@example.com"),
        ('"http://h/a", "x@y"', '"http://h/a", "x@y"'),
    ],
)
def test_url_userinfo_is_replaced_anywhere_in_a_text(text, shown):
    assert redact(text) == shown


def test_url_credentials_are_registered_so_other_forms_go_too():
    register_url_credentials(f"see http://delegate:{quote(ODD_CANARY, safe='')}@host/v1")
    assert redact(f"the password was {ODD_CANARY}") == f"the password was {MARKER}"
    assert not carries(redact(basic_header("delegate", ODD_CANARY)), ODD_CANARY)


# environment


def test_secret_looking_environment_variables_are_known_without_registering(monkeypatch):
    monkeypatch.setenv("DELEGATE_TEST_TOKEN", CANARY)
    monkeypatch.setenv("DELEGATE_TEST_PASSWORD", "short")
    monkeypatch.setenv("DELEGATE_TEST_MODEL", "sentinel-not-a-secret-model")
    assert redact(f"{CANARY} short sentinel-not-a-secret-model") == f"{MARKER} short sentinel-not-a-secret-model"
    monkeypatch.delenv("DELEGATE_TEST_TOKEN")
    assert redact(CANARY) == CANARY


# config trees and overrides


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "OPENAI_API_KEY",
        "apiKey",
        "key",
        "token",
        "hf_token",
        "access_token",
        "client_secret",
        "password",
        "db_passwd",
        "credentials",
        "hydra.job.env_set.OPENAI_API_KEY",
        "basic_auth",
    ],
)
def test_secret_looking_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "api_key_env",
        "llm.api_key_env",
        "max_tokens",
        "max_new_tokens",
        "max_tokens_param",
        "prompt_tokens",
        "reasoning_tokens",
        "price_input_usd_per_1m",
        "price_per_token",
        "max_token",
        "model",
        "base_url",
        "uri",
        "tokens",
        "password_file",
    ],
)
def test_keys_that_only_mention_a_secret(key):
    assert not is_secret_key(key)


def test_a_config_tree_is_redacted_by_key_and_by_value():
    register_secret(CANARY)
    tree = {
        "llm": {
            "api_key_env": "OPENAI_API_KEY",
            "max_tokens": 1024,
            "max_tokens_param": "max_tokens",
            "base_url": f"http://delegate:{CANARY}@127.0.0.1:8000/v1",
            "price_input_usd_per_1m": 2.5,
        },
        "extra": {"api_key": "sentinel-pasted-into-config", "token": None, "secret": {"nested": "x"}},
        "prompts": [f"mentions {CANARY}", 3],
    }
    assert redact_config(tree) == {
        "llm": {
            "api_key_env": "OPENAI_API_KEY",
            "max_tokens": 1024,
            "max_tokens_param": "max_tokens",
            "base_url": "http://***@127.0.0.1:8000/v1",
            "price_input_usd_per_1m": 2.5,
        },
        "extra": {"api_key": MARKER, "token": None, "secret": MARKER},
        "prompts": [f"mentions {MARKER}", 3],
    }
    assert tree["extra"]["api_key"] == "sentinel-pasted-into-config"  # a copy: the tree itself is unchanged


def test_values_under_secret_keys_are_registered():
    register_config_secrets({"hydra": {"job": {"env_set": {"OPENAI_API_KEY": CANARY}}}, "max_tokens": "12345678"})
    assert redact(f"{CANARY} 12345678") == f"{MARKER} 12345678"


@pytest.mark.parametrize(
    ("override", "shown"),
    [
        (f"+hydra.job.env_set.OPENAI_API_KEY={CANARY}", f"+hydra.job.env_set.OPENAI_API_KEY={MARKER}"),
        ("llm.base_url=http://u:pw@host/v1", "llm.base_url=http://***@host/v1"),
        ("llm.api_key_env=MY_SERVER_KEY", "llm.api_key_env=MY_SERVER_KEY"),
        ("llm.max_tokens=64", "llm.max_tokens=64"),
    ],
)
def test_overrides(override, shown):
    assert redact_override(override) == shown


def test_hydra_files_are_rewritten_without_secrets(tmp_path):
    hydra_dir = tmp_path / ".hydra"
    hydra_dir.mkdir()
    base_url = f"http://delegate:{CANARY}@127.0.0.1:8000/v1"
    overrides = [f"llm.base_url={base_url}", f"+hydra.job.env_set.DELEGATE_KEY={ODD_CANARY}", "seed=7"]
    OmegaConf.save(
        OmegaConf.create({"llm": {"base_url": base_url, "max_tokens": 64}, "seed": 7}), hydra_dir / "config.yaml"
    )
    OmegaConf.save(OmegaConf.create(overrides), hydra_dir / "overrides.yaml")
    hydra = {
        "run": {"dir": "outputs/${now:%Y-%m-%d}"},
        "overrides": {"hydra": [], "task": overrides},
        "job": {"env_set": {"DELEGATE_KEY": ODD_CANARY}, "override_dirname": ",".join(overrides)},
    }
    OmegaConf.save(OmegaConf.create({"hydra": hydra}), hydra_dir / "hydra.yaml")
    # A sweep's folder has the config and Hydra's settings in one file.
    OmegaConf.save(OmegaConf.create({"hydra": hydra, "llm": {"base_url": base_url}}), hydra_dir / "multirun.yaml")

    redact_files(hydra_dir)

    assert sorted(path.name for path in hydra_dir.iterdir()) == [
        "config.yaml",
        "hydra.yaml",
        "multirun.yaml",
        "overrides.yaml",
    ]
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml", "multirun.yaml"):
        text = (hydra_dir / name).read_text(encoding="utf-8")
        assert not carries(text, CANARY) and not carries(text, ODD_CANARY), name
    assert OmegaConf.load(hydra_dir / "overrides.yaml") == [
        "llm.base_url=http://***@127.0.0.1:8000/v1",
        f"+hydra.job.env_set.DELEGATE_KEY={MARKER}",
        "seed=7",
    ]
    saved = OmegaConf.load(hydra_dir / "hydra.yaml")
    assert saved.hydra.job.env_set.DELEGATE_KEY == MARKER
    assert OmegaConf.to_container(saved.hydra.run)["dir"] == "outputs/${now:%Y-%m-%d}"  # interpolations kept
    assert OmegaConf.load(hydra_dir / "config.yaml").llm == {
        "base_url": "http://***@127.0.0.1:8000/v1",
        "max_tokens": 64,
    }
    # Both secrets were found in the files, so they are now known everywhere.
    assert redact(f"{CANARY} {ODD_CANARY}") == f"{MARKER} {MARKER}"


def test_hydra_files_without_secrets_are_left_alone(tmp_path):
    (tmp_path / "config.yaml").write_text("seed: 7  # as Hydra wrote it\n", encoding="utf-8")
    redact_files(tmp_path)
    assert (tmp_path / "config.yaml").read_text(encoding="utf-8") == "seed: 7  # as Hydra wrote it\n"


# logs


def make_record(msg, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("httpx", logging.INFO, __file__, 1, msg, args, exc_info)


def test_the_filter_redacts_the_message_and_its_args():
    register_secret(CANARY)
    record = make_record('HTTP Request: POST %s "%s"', f"http://u:{CANARY}@h/v1/chat/completions", "HTTP/1.1 200 OK")
    assert RedactingFilter().filter(record)
    assert record.getMessage() == 'HTTP Request: POST http://***@h/v1/chat/completions "HTTP/1.1 200 OK"'


def test_the_filter_redacts_secret_looking_overrides_hydra_logs():
    record = make_record("\t#0 : strategy=llm +hydra.job.env_set.OPENAI_API_KEY=sentinel-key llm.max_tokens=64")
    RedactingFilter().filter(record)
    assert record.getMessage() == f"\t#0 : strategy=llm +hydra.job.env_set.OPENAI_API_KEY={MARKER} llm.max_tokens=64"


def test_the_filter_leaves_a_clean_record_as_it_was():
    record = make_record("%d problems", 3)
    RedactingFilter().filter(record)
    assert (record.msg, record.args) == ("%d problems", (3,))


def test_the_filter_redacts_a_logged_exception():
    register_secret(CANARY)
    try:
        raise RuntimeError(f"server said: {basic_header('u', CANARY)}")
    except RuntimeError as error:
        record = make_record("call failed", exc_info=(type(error), error, error.__traceback__))
    RedactingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "RuntimeError: server said: Authorization: Basic" in text
    assert not carries(text, CANARY)


@pytest.fixture
def restored_logging(monkeypatch):
    monkeypatch.setattr(redaction, "_log_redaction_installed", False)
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)


def test_installed_redaction_covers_every_handler_even_one_added_later(restored_logging):
    register_secret(CANARY)
    install_log_redaction()
    install_log_redaction()  # a second call adds nothing
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("delegate.test_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("key %s in %s", CANARY, f"https://user:{CANARY}@host/v1")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == f"key {MARKER} in https://***@host/v1\n"


# streamed text


@pytest.mark.parametrize("piece", [1, 3, 7, 1000])
def test_streamed_text_is_passed_on_redacted(piece):
    register_secret(CANARY)
    text = f"Step 1: the key is {CANARY}, see https://user:{CANARY}@host/v1 and {basic_header('u', CANARY)} done"
    received: list[str] = []
    sink = RedactingSink(received.append)
    for start in range(0, len(text), piece):
        sink(text[start : start + piece])
    before_flush = len(received)
    sink.flush()
    assert "".join(received) == redact(text)
    assert not carries("".join(received), CANARY)
    assert before_flush > 0 or piece == 1000  # text is passed on while it streams, not only at the end


def test_a_stream_without_secrets_passes_whole_words_on_at_once():
    received: list[str] = []
    sink = RedactingSink(received.append)
    for word in ["The ", "answer ", "is ", "42."]:
        sink(word)
    assert received == ["The ", "answer ", "is "]
    sink.flush()
    assert received[-1] == "42."


def test_a_credential_in_a_urls_query_string_is_recognised():
    from delegate.redaction import redact, register_url_credentials

    url = "https://example.openai.azure.com/openai/v1?api-version=2024-10-21&api-key=query-key-0123456789"
    assert redact(url) == "https://example.openai.azure.com/openai/v1?api-version=2024-10-21&api-key=***"
    assert redact("https://store.example/blob?sv=2024&sig=c2lnbmF0dXJlMDEyMzQ1&se=1") == (
        "https://store.example/blob?sv=2024&sig=***&se=1"
    )
    # Query parameters that are no credential stay as they are.
    assert redact("http://127.0.0.1:8000/v1?model=m&max_tokens=5") == "http://127.0.0.1:8000/v1?model=m&max_tokens=5"
    register_url_credentials(url)
    assert redact("a server echoed query-key-0123456789 back") == "a server echoed [REDACTED] back"
