//! Emits the runtime table (`tools.rs`) with quote and prettyplease.

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

use crate::error::Error;
use crate::model::{
    Behavior, Catalog, Pagination, Paragraph, PathPart, Projection, Prompt, PromptPart, Route, Tool,
};

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
    let statics = catalog
        .tools
        .iter()
        .enumerate()
        .map(|(index, t)| {
            let ident = tool_ident(&t.name);
            let doc = format!(" `{}`: {}", t.name, t.title);
            let def = tool(t, index, &catalog.paragraphs(&t.description, Some(&t.name)))?;
            Ok(quote! {
                #[doc = #doc]
                pub static #ident: ::malomo_contract::ToolDef = #def;
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let tools = catalog.tools.iter().map(|t| tool_ident(&t.name));
    let instructions = text(&catalog.paragraphs(&catalog.instructions, None));
    let skipped = catalog.skipped.iter().map(|s| {
        let resource = lit(&s.resource);
        let method = lit(&s.method);
        let reason = lit(&s.reason);
        quote! { ::malomo_contract::SkippedMethod { resource: #resource, method: #method, reason: #reason } }
    });
    let prompts = catalog.prompts.iter().map(prompt);
    let tokens = quote! {
        pub static INTEGRATION: ::malomo_contract::Integration = ::malomo_contract::Integration {
            name: #name,
            title: #title,
            default_base_url: #base_url,
            headers: &[#(#headers),*],
            auth_scheme: #auth,
        };
        pub static INSTRUCTIONS: &[::malomo_contract::Paragraph] = #instructions;
        /// Every tool, sorted by name (see `::malomo_contract::find_tool`).
        pub static TOOLS: &[&::malomo_contract::ToolDef] = &[#(&#tools),*];
        pub static SKIPPED: &[::malomo_contract::SkippedMethod] = &[#(#skipped),*];
        pub static PROMPTS: &[::malomo_contract::PromptDef] = &[#(#prompts),*];
        #(#statics)*
    };
    let file: syn::File = syn::parse2(tokens).map_err(|e| Error::Rust(e.to_string()))?;
    Ok(prettyplease::unparse(&file))
}

fn lit(s: &str) -> Literal {
    Literal::string(s)
}

/// The name of a tool's `static`: its name in upper case (tool names are
/// `[A-Za-z0-9_]+`; one starting with a digit gets a leading `_`).
pub fn tool_ident(name: &str) -> Ident {
    let upper = name.to_ascii_uppercase();
    let text = if upper.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{upper}")
    } else {
        upper
    };
    Ident::new(&text, Span::call_site())
}

/// A value of one of the contract's data-free enums, which the model holds
/// as they are (`MethodClass::Read` is emitted as
/// `::malomo_contract::MethodClass::Read`): the variant is its `Debug`
/// name, so no enum is mapped by hand (and the fixtures' compile test
/// catches a type named wrong).
fn variant(ty: &str, value: impl std::fmt::Debug) -> TokenStream {
    let ty = Ident::new(ty, Span::call_site());
    let value = Ident::new(&format!("{value:?}"), Span::call_site());
    quote! { ::malomo_contract::#ty::#value }
}

/// References to the statics of the tools named.
fn tool_refs(names: &[String]) -> TokenStream {
    let idents = names.iter().map(|n| tool_ident(n));
    quote! { &[#(&#idents),*] }
}

fn strs(items: &[String]) -> TokenStream {
    let items = items.iter().map(|s| lit(s));
    quote! { &[#(#items),*] }
}

/// Paragraphs with the tools they name, as `&[Paragraph]`.
fn text(paragraphs: &[Paragraph]) -> TokenStream {
    let items = paragraphs.iter().map(|p| {
        let text = lit(&p.text);
        let mentions = tool_refs(&p.mentions);
        quote! { ::malomo_contract::Paragraph { text: #text, mentions: #mentions } }
    });
    quote! { &[#(#items),*] }
}

fn tool(t: &Tool, index: usize, description: &[Paragraph]) -> Result<TokenStream, Error> {
    let name = lit(&t.name);
    let title = lit(&t.title);
    let description = text(description);
    let resource = lit(&t.resource);
    let method = lit(&t.method);
    let class = variant("MethodClass", t.class);
    let custom = t.custom;
    let tags = strs(&t.tags);
    let http = variant("HttpMethod", t.http);
    let index = Literal::usize_unsuffixed(index);
    let path = t.path_parts.iter().map(|part| match part {
        PathPart::Literal(text) => {
            let text = lit(text);
            quote! { ::malomo_contract::PathPart::Literal(#text) }
        }
        PathPart::Input(name) => {
            let name = lit(name);
            quote! { ::malomo_contract::PathPart::Input(#name) }
        }
    });
    let fields = t.fields.iter().map(route);
    let input = lit(&serde_json::to_string(&t.input_schema)?);
    let output = lit(&serde_json::to_string(&t.output_schema)?);
    let a = &t.annotations;
    let (ro, de, id, ow) = (a.read_only, a.destructive, a.idempotent, a.open_world);
    let pagination = match &t.pagination {
        Some(p) => {
            let p = pagination(p);
            quote! { ::core::option::Option::Some(#p) }
        }
        None => quote! { ::core::option::Option::None },
    };
    let behavior = behavior(&t.behavior);
    let projection = match &t.projection {
        Some(p) => {
            let p = projection(p);
            quote! { ::core::option::Option::Some(#p) }
        }
        None => quote! { ::core::option::Option::None },
    };
    Ok(quote! {
        ::malomo_contract::ToolDef {
            name: #name,
            index: #index,
            title: #title,
            description: #description,
            resource: #resource,
            method: #method,
            class: #class,
            custom: #custom,
            tags: #tags,
            http_method: #http,
            path: &[#(#path),*],
            fields: &[#(#fields),*],
            input_schema: #input,
            output_schema: #output,
            annotations: ::malomo_contract::Annotations { read_only: #ro, destructive: #de, idempotent: #id, open_world: #ow },
            pagination: #pagination,
            behavior: #behavior,
            projection: #projection,
        }
    })
}

fn projection(p: &Projection) -> TokenStream {
    let paths = strs(&p.paths);
    let default_fields = strs(&p.default_fields);
    let kept = strs(&p.kept);
    let budget = Literal::u32_unsuffixed(p.budget);
    let matches = strs(&p.matches);
    quote! {
        ::malomo_contract::Projection {
            paths: #paths,
            default_fields: #default_fields,
            kept: #kept,
            budget: #budget,
            matches: #matches,
        }
    }
}

fn route(r: &Route) -> TokenStream {
    let name = lit(&r.name);
    let wire = lit(&r.wire);
    let location = variant("Location", r.location);
    let required = r.required;
    quote! { ::malomo_contract::FieldRoute { name: #name, wire: #wire, location: #location, required: #required } }
}

fn pagination(p: &Pagination) -> TokenStream {
    let limit_param = lit(&p.limit_param);
    let default_limit = Literal::u32_unsuffixed(p.default_limit);
    let max_limit = Literal::u32_unsuffixed(p.max_limit);
    let cursors = strs(&p.cursor_params);
    let (obj, nf) = (p.object_as_item, p.not_found_as_empty);
    quote! {
        ::malomo_contract::Pagination {
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
    quote! { ::malomo_contract::KeyedArray { field: #field, key: #key } }
}

fn behavior(b: &Behavior) -> TokenStream {
    match b {
        Behavior::Direct => quote! { ::malomo_contract::Behavior::Direct },
        Behavior::GuardedReplace {
            array,
            read_tool,
            override_flag,
            add_tool,
        } => {
            let array = keyed_array(array);
            let read_tool = tool_ident(read_tool);
            let flag = lit(override_flag);
            let add_tool = match add_tool {
                Some(name) => {
                    let ident = tool_ident(name);
                    quote! { ::core::option::Option::Some(&#ident) }
                }
                None => quote! { ::core::option::Option::None },
            };
            quote! {
                ::malomo_contract::Behavior::GuardedReplace {
                    array: #array,
                    read_tool: &#read_tool,
                    override_flag: #flag,
                    add_tool: #add_tool,
                }
            }
        }
        Behavior::KeyedArrayMerge {
            array,
            op,
            read_tool,
            write_tool,
            id_arg,
        } => {
            let array = keyed_array(array);
            let op = variant("MergeOp", *op);
            let read_tool = tool_ident(read_tool);
            let write_tool = tool_ident(write_tool);
            let id_arg = lit(id_arg);
            quote! {
                ::malomo_contract::Behavior::KeyedArrayMerge {
                    array: #array,
                    op: #op,
                    read_tool: &#read_tool,
                    write_tool: &#write_tool,
                    id_arg: #id_arg,
                }
            }
        }
        Behavior::InboxSubscription {
            list_tool,
            create_tool,
            url_field,
            secret_field,
        } => {
            let (list_tool, create_tool) = (tool_ident(list_tool), tool_ident(create_tool));
            let (url_field, secret_field) = (lit(url_field), lit(secret_field));
            quote! {
                ::malomo_contract::Behavior::InboxSubscription {
                    list_tool: &#list_tool,
                    create_tool: &#create_tool,
                    url_field: #url_field,
                    secret_field: #secret_field,
                }
            }
        }
        Behavior::StoredEvents { filters, resource } => {
            let filters = filters.iter().map(event_filter);
            let resource = match resource {
                Some(r) => {
                    let (uri, title, description) =
                        (lit(&r.uri), lit(&r.title), lit(&r.description));
                    quote! { ::core::option::Option::Some(::malomo_contract::EventResource { uri: #uri, title: #title, description: #description }) }
                }
                None => quote! { ::core::option::Option::None },
            };
            quote! {
                ::malomo_contract::Behavior::StoredEvents {
                    filters: &[#(#filters),*],
                    resource: #resource,
                }
            }
        }
    }
}

fn event_filter(f: &crate::model::EventFilterRoute) -> TokenStream {
    let input = lit(&f.input);
    let on = variant("EventFilter", f.on);
    quote! { (#input, #on) }
}

fn prompt(p: &Prompt) -> TokenStream {
    let name = lit(&p.name);
    let title = lit(&p.title);
    let description = lit(&p.description);
    let tools = tool_refs(&p.tools);
    let text = p.parts.iter().map(|part| match part {
        PromptPart::Literal(text) => {
            let text = lit(text);
            quote! { ::malomo_contract::PromptPart::Literal(#text) }
        }
        PromptPart::Argument(name) => {
            let name = lit(name);
            quote! { ::malomo_contract::PromptPart::Argument(#name) }
        }
    });
    let arguments = p.arguments.iter().map(|a| {
        let name = lit(&a.name);
        let description = lit(&a.description);
        let required = a.required;
        quote! { ::malomo_contract::PromptArgumentDef { name: #name, description: #description, required: #required } }
    });
    quote! {
        ::malomo_contract::PromptDef {
            name: #name,
            title: #title,
            description: #description,
            arguments: &[#(#arguments),*],
            tools: #tools,
            text: &[#(#text),*],
        }
    }
}
