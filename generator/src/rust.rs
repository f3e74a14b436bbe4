//! Emits the runtime table (`tools.rs`) with quote and prettyplease.

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::error::Error;
use crate::model::{
    Behavior, Catalog, Class, Location, Pagination, Paragraph, Prompt, Route, Tool,
};
use crate::spec::{HttpVerb, MergeOpSpec};

/// The text of `tools.rs`, without the generated-file header line.
pub fn tools_rs(catalog: &Catalog) -> Result<String, Error> {
    let integration = &catalog.integration;
    let name = lit(&integration.name);
    let title = lit(&integration.title);
    let base_url = lit(&integration.base_url);
    let auth = lit(&integration.auth_scheme);
    let headers = integration.headers.iter().map(|(k, v)| {
        let k = lit(k);
        let v = lit(v);
        quote! { (#k, #v) }
    });
    let tools = catalog
        .tools
        .iter()
        .map(|t| tool(t, &catalog.paragraphs(&t.description, Some(&t.name))))
        .collect::<Result<Vec<_>, Error>>()?;
    let instructions = text(&catalog.paragraphs(&catalog.instructions, None));
    let skipped = catalog.skipped.iter().map(|s| {
        let resource = lit(&s.resource);
        let method = lit(&s.method);
        let reason = lit(&s.reason);
        quote! { SkippedMethod { resource: #resource, method: #method, reason: #reason } }
    });
    let prompts = catalog.prompts.iter().map(prompt);
    let tokens = quote! {
        pub static INTEGRATION: Integration = Integration {
            name: #name,
            title: #title,
            default_base_url: #base_url,
            headers: &[#(#headers),*],
            auth_scheme: #auth,
        };
        pub static INSTRUCTIONS: &[Paragraph] = #instructions;
        pub static TOOLS: &[ToolDef] = &[#(#tools),*];
        pub static SKIPPED: &[SkippedMethod] = &[#(#skipped),*];
        pub static PROMPTS: &[PromptDef] = &[#(#prompts),*];
    };
    let file: syn::File = syn::parse2(tokens).map_err(|e| Error::Rust(e.to_string()))?;
    Ok(prettyplease::unparse(&file))
}

fn lit(s: &str) -> Literal {
    Literal::string(s)
}

fn strs(items: &[String]) -> TokenStream {
    let items = items.iter().map(|s| lit(s));
    quote! { &[#(#items),*] }
}

/// Paragraphs with the tools they name, as `&[Paragraph]`.
fn text(paragraphs: &[Paragraph]) -> TokenStream {
    let items = paragraphs.iter().map(|p| {
        let text = lit(&p.text);
        let mentions = strs(&p.mentions);
        quote! { Paragraph { text: #text, mentions: #mentions } }
    });
    quote! { &[#(#items),*] }
}

fn tool(t: &Tool, description: &[Paragraph]) -> Result<TokenStream, Error> {
    let name = lit(&t.name);
    let title = lit(&t.title);
    let description = text(description);
    let resource = lit(&t.resource);
    let method = lit(&t.method);
    let class = match t.class {
        Class::Read => quote! { MethodClass::Read },
        Class::Write => quote! { MethodClass::Write },
    };
    let custom = t.custom;
    let tags = strs(&t.tags);
    let http = match t.http {
        HttpVerb::Get => quote! { HttpMethod::Get },
        HttpVerb::Post => quote! { HttpMethod::Post },
        HttpVerb::Put => quote! { HttpMethod::Put },
        HttpVerb::Patch => quote! { HttpMethod::Patch },
        HttpVerb::Delete => quote! { HttpMethod::Delete },
    };
    let path = lit(&t.path);
    let fields = t.fields.iter().map(route);
    let input = lit(&serde_json::to_string(&t.input_schema)?);
    let output = lit(&serde_json::to_string(&t.output_schema)?);
    let a = &t.annotations;
    let (ro, de, id, ow) = (a.read_only, a.destructive, a.idempotent, a.open_world);
    let pagination = match &t.pagination {
        Some(p) => {
            let p = pagination(p);
            quote! { Some(#p) }
        }
        None => quote! { None },
    };
    let behavior = behavior(&t.behavior);
    Ok(quote! {
        ToolDef {
            name: #name,
            title: #title,
            description: #description,
            resource: #resource,
            method: #method,
            class: #class,
            custom: #custom,
            tags: #tags,
            http_method: #http,
            path: #path,
            fields: &[#(#fields),*],
            input_schema: #input,
            output_schema: #output,
            annotations: Annotations { read_only: #ro, destructive: #de, idempotent: #id, open_world: #ow },
            pagination: #pagination,
            behavior: #behavior,
        }
    })
}

fn route(r: &Route) -> TokenStream {
    let name = lit(&r.name);
    let wire = lit(&r.wire);
    let location = match r.location {
        Location::Path => quote! { Location::Path },
        Location::Query => quote! { Location::Query },
        Location::Body => quote! { Location::Body },
        Location::Control => quote! { Location::Control },
    };
    let required = r.required;
    quote! { FieldRoute { name: #name, wire: #wire, location: #location, required: #required } }
}

fn pagination(p: &Pagination) -> TokenStream {
    let limit_param = lit(&p.limit_param);
    let default_limit = Literal::u32_unsuffixed(p.default_limit);
    let max_limit = Literal::u32_unsuffixed(p.max_limit);
    let cursors = strs(&p.cursor_params);
    let (obj, nf) = (p.object_as_item, p.not_found_as_empty);
    quote! {
        Pagination {
            limit_param: #limit_param,
            default_limit: #default_limit,
            max_limit: #max_limit,
            cursor_params: #cursors,
            object_as_item: #obj,
            not_found_as_empty: #nf,
        }
    }
}

fn keyed_array(a: &crate::model::KeyedArray) -> TokenStream {
    let field = lit(&a.field);
    let key = strs(&a.key);
    quote! { KeyedArray { field: #field, key: #key } }
}

fn behavior(b: &Behavior) -> TokenStream {
    match b {
        Behavior::Direct => quote! { Behavior::Direct },
        Behavior::GuardedReplace {
            array,
            read_tool,
            override_flag,
        } => {
            let array = keyed_array(array);
            let read_tool = lit(read_tool);
            let flag = lit(override_flag);
            quote! { Behavior::GuardedReplace { array: #array, read_tool: #read_tool, override_flag: #flag } }
        }
        Behavior::KeyedArrayMerge {
            array,
            op,
            read_tool,
            write_tool,
            id_arg,
        } => {
            let array = keyed_array(array);
            let op = match op {
                MergeOpSpec::Add => quote! { MergeOp::Add },
                MergeOpSpec::Remove => quote! { MergeOp::Remove },
            };
            let read_tool = lit(read_tool);
            let write_tool = lit(write_tool);
            let id_arg = lit(id_arg);
            quote! {
                Behavior::KeyedArrayMerge {
                    array: #array,
                    op: #op,
                    read_tool: #read_tool,
                    write_tool: #write_tool,
                    id_arg: #id_arg,
                }
            }
        }
    }
}

fn prompt(p: &Prompt) -> TokenStream {
    let name = lit(&p.name);
    let title = lit(&p.title);
    let description = lit(&p.description);
    let tools = strs(&p.tools);
    let text = lit(&p.text);
    let arguments = p.arguments.iter().map(|a| {
        let name = lit(&a.name);
        let description = lit(&a.description);
        let required = a.required;
        quote! { PromptArgumentDef { name: #name, description: #description, required: #required } }
    });
    quote! {
        PromptDef {
            name: #name,
            title: #title,
            description: #description,
            arguments: &[#(#arguments),*],
            tools: #tools,
            text: #text,
        }
    }
}
