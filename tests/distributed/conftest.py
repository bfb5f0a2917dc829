import pytest


@pytest.fixture(scope="session")
def one_process_mlp(tmp_path_factory):
    """The digits MLP of test_ddp_training trained in this process, once: what its 2-rank runs (DDP and FSDP)
    reach."""
    import zerotune
    from zerotune.config import load_config

    from .test_ddp_training import SETTINGS

    runs = tmp_path_factory.mktemp("one-process")
    return zerotune.train(load_config(None, [*SETTINGS, f"log.dir={runs}", "log.name=one"])).run_dir
