"""Hook specifications: the doors through which plugins extend weightwatch.

Each hook receives a ``register`` callable; call it once per thing you add.
weightwatch owns the collection and tags each entry with the plugin that
registered it. Registering a name that another plugin already registered is
an error naming both plugins.

Built-in extractors, adapters, rules, datasets and architectures use these
same hooks (declared in ``weightwatch/__init__.py``, see ``weightwatch.plugins.declare_builtins``).
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("weightwatch")
hookimpl = HookimplMarker("weightwatch")


@hookspec
def register_extractors(register):
    """Register feature extractors.

    :param register: ``register(extractor)``; ``extractor`` is a
        :class:`weightwatch.features.Extractor` (its ``name`` is the key users
        pass, e.g. ``"W_L"``).
    """


@hookspec
def register_adapters(register):
    """Register adapters that read a framework's model into a ``Network``.

    :param register: ``register(adapter)``; ``adapter`` is a
        :class:`weightwatch.adapters.Adapter` with ``name``, ``priority``,
        ``accepts(obj)`` and ``convert(obj, **options)`` (returns the
        ``Network``; :func:`weightwatch.adapters.to_network` calls it).
    """


@hookspec
def register_rules(register):
    """Register failure rules used by the training monitor.

    :param register: ``register(rule)``; ``rule`` is a
        :class:`weightwatch.rules.Rule`: a ``name`` and ``check(context)``,
        called once per checked epoch with a :class:`weightwatch.rules.RuleContext`,
        returning a :class:`weightwatch.rules.Finding` or None (a plugin names its
        own reason, ``Reason("my_reason")``).
    """


@hookspec
def register_datasets(register):
    """Register zoo datasets.

    :param register: ``register(name, loader)``; ``loader(**options)``
        returns a :class:`weightwatch.zoo.datasets.Dataset`.
    """


@hookspec
def register_architectures(register):
    """Register zoo network families.

    :param register: ``register(spec)``; ``spec`` is a
        :class:`weightwatch.zoo.architectures.ArchitectureSpec` (key: its ``name``).
    """
