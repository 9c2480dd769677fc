"""``omniret ask "question"``: evidence from the index for a generator, and its answer with citations.

Registered in :mod:`omniret.cli.main`. With ``--llm-url`` (or ``$OMNIRET_LLM_URL``) the context goes to
that OpenAI-compatible endpoint and the answer is printed with its numbered sources; without one the
context itself is printed (what a generator would read).
"""

from __future__ import annotations

import click

from omniret.cli.common import _emit, _errors, _open, _settings


@click.command("ask")
@click.argument("question")
@click.option("--budget", "budget_tokens", type=click.IntRange(1, 1_000_000), default=2000, show_default=True,
              help="Token budget of the evidence.")
@click.option("--modality", multiple=True, help="Only these modalities (repeatable).")
@click.option("--tokenizer", default=None, help="The generator's tokenizer (Hugging Face name or folder) to count "
              "tokens with; default: an approximation.")
@click.option("--route", default="all", show_default=True, help="all (calibrated mix), llm (UniversalRAG routing "
              "via $OMNIRET_ROUTER_URL) or a modality.")
@click.option("--rerank", default=None, help="Second stage: cross, cross:<model>, maxsim, model:<registry name>.")
@click.option("--candidates", type=click.IntRange(1, 10_000), default=40, show_default=True,
              help="First-stage hits considered.")
@click.option("--llm-url", envvar="OMNIRET_LLM_URL", default=None,
              help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (env OMNIRET_LLM_URL).")
@click.option("--llm-model", envvar="OMNIRET_LLM_MODEL", default=None, help="Model name sent to the endpoint.")
@click.option("--thumbnail-url", default=None, help="URL template for thumbnails, e.g. http://host:8000/thumbs/{id}.")
@click.pass_context
def ask_cmd(ctx: click.Context, question: str, budget_tokens: int, modality: tuple[str, ...], tokenizer: str | None,
            route: str, rerank: str | None, candidates: int, llm_url: str | None, llm_model: str | None,
            thumbnail_url: str | None) -> None:
    """Answer QUESTION from the index with numbered citations (or print the evidence without --llm-url)."""
    from omniret.tasks.generate import generate, llm_config

    s = _settings(ctx)
    with _errors(s):
        idx = _open(s, must_exist=True)
        try:
            context = idx.context(question, budget_tokens=budget_tokens, modalities=list(modality) or None,
                                  tokenizer=tokenizer, route=route, rerank=rerank, candidates=candidates,
                                  thumbnail_url=thumbnail_url)
        finally:
            idx.close()
        url, model, key = llm_config(llm_url, llm_model)
        if url is None:
            if s.json:
                _emit(s, context.to_dict())
            else:
                click.echo(context.render() or "no evidence found")
                click.echo(f"\n({len(context.pieces)} pieces, {context.used_tokens}/{context.budget_tokens} tokens"
                           f"{'' if context.exact_tokens else ' (estimated)'}; no --llm-url: context only)")
            return
        answer = generate(context, url, model=model, api_key=key)
        if s.json:
            _emit(s, answer.to_dict())
            return
        click.echo(answer.text)
        if context.pieces:
            click.echo("\nSources:")
            for p in context.pieces:
                mark = "*" if p.n in answer.cited else " "
                thumb = f"  [{p.citation.thumbnail}]" if p.citation.thumbnail and p.citation.thumbnail != p.citation.uri else ""
                click.echo(f"{mark}[{p.n}] {p.modality.value}: {p.citation.describe()}{thumb}")
