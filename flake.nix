{
  description = "Conveyor: Django + Celery background tasks that lose nothing";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # pyproject.toml's dependencies and its `dev` extra (tests/test_environments.py
      # checks that none is missing). honcho and ruff are applications in nixpkgs, not
      # Python packages: the shell adds them beside Python.
      pythonFor =
        pkgs:
        pkgs.python3.withPackages (
          ps: with ps; [
            django
            celery
            kombu
            redis
            django-environ
            python-json-logger
            django-ninja
            prometheus-client
            psycopg
            pytest
            pytest-django
            pytest-timeout
            pytest-xdist
            gunicorn
            whitenoise
            dramatiq
            pika # dramatiq[rabbitmq]
            matplotlib
            schemathesis
            selenium
          ]
        );

      # The working tree without local state: a `path:` flake would otherwise bring
      # in .venv, .run and a developer's .env (which settings read).
      src = lib.cleanSourceWith {
        src = lib.cleanSource ./.;
        filter =
          path: type:
          !(builtins.elem (baseNameOf path) [
            ".env"
            ".venv"
            ".venv-oldest"
            ".run"
            "__pycache__"
            ".pytest_cache"
            ".ruff_cache"
            "staticfiles"
            "conveyor.egg-info"
          ]);
      };
    in
    {
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            (pythonFor pkgs)
            pkgs.redis
            pkgs.rabbitmq-server
            pkgs.honcho
            pkgs.ruff
            pkgs.gnumake
            pkgs.prometheus # promtool, which the metrics tests run
            pkgs.chromium # the operator console's browser tests, through
            pkgs.chromedriver # selenium
          ]
          # unshare: the first-run test's network of its own (Linux only)
          ++ pkgs.lib.optional pkgs.stdenv.hostPlatform.isLinux pkgs.util-linux;
          # Defaults for the Procfile. A variable already set in the environment or in
          # .env (which honcho and the settings read) is left alone.
          shellHook = ''
            root=$PWD
            while [ "$root" != / ] && [ ! -f "$root/manage.py" ]; do root=$(dirname "$root"); done
            [ -f "$root/manage.py" ] || root=$PWD

            conveyor_default() {
              if [ -z "''${!1+set}" ] \
                && ! grep -Eqs "^[[:space:]]*(export[[:space:]]+)?$1=" "$root/.env"; then
                export "$1=$2"
              fi
            }
            conveyor_default DJANGO_SETTINGS_MODULE config.settings.dev
            conveyor_default RUN_DIR "$root/.run"
            conveyor_default REDIS_PORT 6379
            conveyor_default RABBITMQ_PORT 5672
            conveyor_default WEB_PORT 8000
            unset -f conveyor_default
            export PYTHONPATH="$root''${PYTHONPATH:+:$PYTHONPATH}"
            # Buffered, honcho 2.0 crashes on a Ctrl-C while it waits to write, and hangs.
            export PYTHONUNBUFFERED=1

            cat >&2 <<'EOF'
            Conveyor shell: Python with every dependency, Redis, RabbitMQ, honcho, ruff, promtool, Chromium.
              make dev        migrate, then run the broker in use (Redis; BROKER=rabbitmq for RabbitMQ), web, worker and beat
              make test       run the test suite
              make help       list the other targets and the variables that matter
            EOF
          '';
        };
      });

      checks = forAllSystems (pkgs: {
        # The test suite on SQLite (there is no PostgreSQL in the build sandbox). The
        # tests start their own redis-server and RabbitMQ node on loopback ports.
        default =
          pkgs.runCommand "conveyor-tests"
            {
              nativeBuildInputs = [
                (pythonFor pkgs)
                pkgs.redis
                pkgs.rabbitmq-server
                pkgs.honcho
                pkgs.prometheus # promtool check metrics, in the metrics tests
                pkgs.chromium # the browser tests (headless)
                pkgs.chromedriver
                pkgs.gnumake # the first-run test runs make dev
              ]
              ++ pkgs.lib.optional pkgs.stdenv.hostPlatform.isLinux pkgs.util-linux;
              # macOS sandbox: allow the loopback connections to the test brokers.
              __darwinAllowLocalNetworking = true;
            }
            ''
              cp -r ${src} source
              chmod -R u+w source
              cd source
              export HOME=$TMPDIR/home RUN_DIR=$TMPDIR/run PYTHONPATH=$PWD
              mkdir -p "$HOME"
              unset DATABASE_URL
              pytest -p no:cacheprovider -n auto --dist worksteal
              touch $out
            '';

        lint = pkgs.runCommand "conveyor-lint" { nativeBuildInputs = [ pkgs.ruff ]; } ''
          cd ${src}
          ruff check --no-cache .
          ruff format --check --no-cache .
          touch $out
        '';
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-tree);
    };
}
