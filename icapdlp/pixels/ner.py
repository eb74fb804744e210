"""The Presidio analyzer, configured explicitly and created once per process.

Presidio's defaults load ``en_core_web_lg`` (downloaded at run time) and a
registry of regex recognizers some of which fetch public-suffix data. Neither
may happen here: we build the spaCy NLP engine on the configured, pip-installed
model and a registry holding exactly the recognisers the policy names
(:mod:`icapdlp.pixels.recognizers`: spaCy's for the entities we use, presidio's
offline predefined ones and our ``PatternRecognizer`` entries).
Loading the model takes about a second, so engines are cached per model name
for the life of the (worker) process. Only the entity recogniser runs: the
tagger, parser, lemmatizer and the tok2vec they share do not feed spaCy's NER
(it has its own embedding layer), so the spans are the same and each frame's
text is analysed in about half the time.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import threading
from typing import Any

from icapdlp.pixels import recognizers
from icapdlp.pixels.detect import Span

_ENGINES: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Any] = {}
_LOCK = threading.Lock()
LANGUAGE = recognizers.LANGUAGE
#: pipeline components that never change the NER's output (measured: same entities, 2-3 ms less per frame)
_LETTER_WORD = re.compile(r"\b[^\W\d_]{3,}\b")
UNUSED_PIPES = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter")


def model_installed(model_name: str) -> bool:
    """True when ``model_name`` is an importable, pip-installed package (what spacy.load needs).

    Neither lookup imports the package: nothing is loaded, nothing downloaded.
    Start-up, readiness and each worker's warm-up all ask this one question.
    """
    try:
        if importlib.util.find_spec(model_name) is None:
            return False
    except (ImportError, ValueError):
        return False
    try:
        importlib.metadata.distribution(model_name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def analyzer(model_name: str, entities: tuple[str, ...],
             recognizer_names: tuple[str, ...] = recognizers.RECOGNIZER_NAMES) -> Any:
    """The cached ``AnalyzerEngine`` for this model and these recognisers; built on first use."""
    key = (model_name, entities, recognizer_names)
    engine = _ENGINES.get(key)
    if engine is not None:
        return engine
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _build(model_name, entities, recognizer_names)
            _ENGINES[key] = engine
    return engine


def _build(model_name: str, entities: tuple[str, ...], recognizer_names: tuple[str, ...]) -> Any:
    if not model_installed(model_name):
        raise LookupError("NER model package is not installed")
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine

    nlp = SpacyNlpEngine(models=[{"lang_code": LANGUAGE, "model_name": model_name}],
                         ner_model_configuration=NerModelConfiguration())
    nlp.load()
    spacy_nlp = nlp.nlp[LANGUAGE]
    if "ner" in spacy_nlp.pipe_names and not _ner_listens(spacy_nlp):
        spacy_nlp.select_pipes(disable=[p for p in UNUSED_PIPES if p in spacy_nlp.pipe_names])
    registry = RecognizerRegistry(recognizers=recognizers.build(recognizer_names, entities),
                                  supported_languages=[LANGUAGE])
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=[LANGUAGE])


def _ner_listens(spacy_nlp: Any) -> bool:
    """True when the NER reads a shared tok2vec (then nothing may be disabled)."""
    for name in spacy_nlp.pipe_names:
        pipe = spacy_nlp.get_pipe(name)
        if "ner" in (getattr(pipe, "listening_components", None) or ()):
            return True
    return False


class PresidioNer:
    """Callable text -> spans over the cached analyzer (loaded lazily on first call)."""

    def __init__(self, model_name: str, entities: tuple[str, ...],
                 recognizer_names: tuple[str, ...] = recognizers.RECOGNIZER_NAMES) -> None:
        self.model_name = model_name
        self.entities = tuple(entities)
        self.recognizer_names = tuple(recognizer_names)

    def load(self) -> None:
        analyzer(self.model_name, self.entities, self.recognizer_names)

    def shapes(self, text: str) -> list[Span]:
        """The shape recognisers' spans alone (detect's second pass over every word keeps no other).

        spaCy only tokenises here (presidio's context words still raise a shape's score: "SSN" before a
        number), its entity model does not run, nor the title-cased second analysis: half the analyzer's
        time per frame went to spaCy spans that pass discarded.
        """
        from presidio_analyzer.nlp_engine import NlpArtifacts

        engine = analyzer(self.model_name, self.entities, self.recognizer_names)
        shape_recognizers = [r for r in engine.registry.recognizers if r.name in recognizers.STRUCTURAL]
        if not shape_recognizers:
            return []
        doc = engine.nlp_engine.get_nlp(LANGUAGE).make_doc(text)
        artifacts = NlpArtifacts(entities=[], tokens=doc, tokens_indices=[t.idx for t in doc],
                                 lemmas=[t.lemma_ for t in doc], nlp_engine=engine.nlp_engine, language=LANGUAGE,
                                 scores=[])
        results = engine.analyze(text=text, language=LANGUAGE, entities=recognizers.entities(shape_recognizers),
                                 nlp_artifacts=artifacts)
        return [Span(r.start, r.end, r.entity_type, float(r.score), _recognizer_name(r)) for r in results
                if _recognizer_name(r) in recognizers.STRUCTURAL]

    def __call__(self, text: str) -> list[Span]:
        engine = analyzer(self.model_name, self.entities, self.recognizer_names)
        wanted = recognizers.entities(engine.registry.recognizers)
        results = engine.analyze(text=text, language=LANGUAGE, entities=wanted)
        spans = [Span(r.start, r.end, r.entity_type, float(r.score), _recognizer_name(r)) for r in results]
        titled = title_case_capitals(text)
        if titled != text and recognizers.SPACY in self.recognizer_names:
            # overlays write names in capitals ("CASTELLANO AMELIE"), which spaCy's model rarely tags;
            # the same text with such words title-cased (same length, same offsets) is asked again
            results = engine.analyze(text=titled, language=LANGUAGE, entities=list(self.entities))
            spans += [Span(r.start, r.end, r.entity_type, float(r.score), _recognizer_name(r)) for r in results
                      if _recognizer_name(r) == recognizers.SPACY]
        return spans


def title_case_capitals(text: str) -> str:
    """Words of three or more capitals title-cased ("OKAFOR" -> "Okafor"); everything else as it was."""
    def title(m: re.Match) -> str:
        word = m.group(0)
        return word[0] + word[1:].lower() if word.isupper() and len(word[1:].lower()) == len(word) - 1 else word
    return _LETTER_WORD.sub(title, text)


def _recognizer_name(result: Any) -> str:
    """Which of the policy's named recognisers found a span (each is built with its policy name)."""
    name = str((result.recognition_metadata or {}).get("recognizer_name", ""))
    return name
